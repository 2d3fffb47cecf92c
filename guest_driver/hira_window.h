/* The interface of /dev/hira_window, shared by the guest kernel module and
 * hira's guest runtime. */
#ifndef HIRA_WINDOW_H
#define HIRA_WINDOW_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Where this open file's slice of the VM's shared region lies: mmap the
 * device with length `size` at offset 0 to reach it; tell the host `offset`. */
struct hira_window_slice {
  __u64 offset; /* from the start of the region (the ivshmem BAR) */
  __u64 size;
};

#define HIRA_WINDOW_IOC_SLICE _IOR('h', 1, struct hira_window_slice)

#endif
