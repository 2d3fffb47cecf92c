#include "vm.h"

#include <stdexcept>

namespace hira::router {

Vm &VmTable::add(const std::string &name) {
  if (Vm *vm = find(name)) return *vm;
  if (vms_.size() >= HIRA_MAX_VMS) {
    throw std::runtime_error("more than " + std::to_string(HIRA_MAX_VMS) + " VMs on one router");
  }
  auto vm = std::make_unique<Vm>();
  vm->name = name;
  vm->index = static_cast<uint32_t>(vms_.size());
  vms_.push_back(std::move(vm));
  return *vms_.back();
}

Vm *VmTable::find(const std::string &name) const {
  for (const auto &vm : vms_) {
    if (vm->name == name) return vm.get();
  }
  return nullptr;
}

}  // namespace hira::router
