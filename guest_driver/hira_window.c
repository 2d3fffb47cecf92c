// SPDX-License-Identifier: GPL-2.0
/*
 * hira_window: the guest side of hira's shared-memory data path in a VM.
 *
 * The host gives the VM an ivshmem-plain PCI device whose BAR 2 is a region
 * of host memory that the host's API servers map too. This module splits
 * the region into equal slices and gives each open file of /dev/hira_window
 * one slice of its own (exclusive while open), which the process maps with
 * mmap. hira's guest library uses its slice as its data window: bulk data
 * is written there and named in commands by offset, instead of crossing the
 * vsock stream. The host router lets at most one guest process of the VM
 * use a slice at a time.
 */
#include <linux/bitmap.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/uaccess.h>

#include "hira_window.h"

#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110
#define MAX_SLICES 256

static unsigned int slice_mb = 64;
module_param(slice_mb, uint, 0444);
MODULE_PARM_DESC(slice_mb, "size of each process's slice of the region, in MiB");

static struct {
	resource_size_t start, len;
	unsigned long nslices, slice_size;
	DECLARE_BITMAP(used, MAX_SLICES);
	struct mutex lock;
	bool present;
} region;

struct slice {
	unsigned long index;
};

static int window_open(struct inode *inode, struct file *file)
{
	struct slice *s;
	unsigned long i;

	if (!region.present)
		return -ENODEV;
	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	mutex_lock(&region.lock);
	i = find_first_zero_bit(region.used, region.nslices);
	if (i < region.nslices)
		set_bit(i, region.used);
	mutex_unlock(&region.lock);
	if (i >= region.nslices) {
		kfree(s);
		return -EBUSY; /* every slice taken: the library sends data inline */
	}
	s->index = i;
	file->private_data = s;
	return 0;
}

static int window_release(struct inode *inode, struct file *file)
{
	struct slice *s = file->private_data;

	mutex_lock(&region.lock);
	clear_bit(s->index, region.used);
	mutex_unlock(&region.lock);
	kfree(s);
	return 0;
}

static long window_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct slice *s = file->private_data;
	struct hira_window_slice out;

	if (cmd != HIRA_WINDOW_IOC_SLICE)
		return -ENOTTY;
	out.offset = (__u64)s->index * region.slice_size;
	out.size = region.slice_size;
	return copy_to_user((void __user *)arg, &out, sizeof(out)) ? -EFAULT : 0;
}

static int window_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct slice *s = file->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;
	phys_addr_t at;

	/* Only this file's slice, from its start. */
	if (vma->vm_pgoff != 0 || len > region.slice_size)
		return -EINVAL;
	at = region.start + (phys_addr_t)s->index * region.slice_size;
	/* RAM on the host side: cacheable, as ordinary memory. */
	vma->vm_flags |= VM_IO | VM_DONTEXPAND | VM_DONTDUMP; /* 6.1: no vm_flags_set() yet */
	return remap_pfn_range(vma, vma->vm_start, at >> PAGE_SHIFT, len, vma->vm_page_prot);
}

static const struct file_operations window_fops = {
	.owner = THIS_MODULE,
	.open = window_open,
	.release = window_release,
	.unlocked_ioctl = window_ioctl,
	.mmap = window_mmap,
};

static struct miscdevice window_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "hira_window",
	.fops = &window_fops,
	.mode = 0666,
};

static int window_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int err;

	if (region.present)
		return -EBUSY; /* one region per VM */
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(2), "hira_window");
	if (err)
		return err;
	region.start = pci_resource_start(pdev, 2);
	region.len = pci_resource_len(pdev, 2);
	region.slice_size = (unsigned long)slice_mb << 20;
	if (region.slice_size == 0 || region.slice_size > region.len)
		region.slice_size = region.len;
	region.nslices = min_t(unsigned long, region.len / region.slice_size, MAX_SLICES);
	bitmap_zero(region.used, MAX_SLICES);
	region.present = true;
	err = misc_register(&window_dev);
	if (err) {
		region.present = false;
		return err;
	}
	dev_info(&pdev->dev, "hira window: %llu MiB region, %lu slices of %lu MiB\n",
		 (unsigned long long)region.len >> 20, region.nslices, region.slice_size >> 20);
	return 0;
}

static void window_remove(struct pci_dev *pdev)
{
	misc_deregister(&window_dev);
	region.present = false;
}

static const struct pci_device_id window_ids[] = {
	{ PCI_DEVICE(IVSHMEM_VENDOR, IVSHMEM_DEVICE) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, window_ids);

static struct pci_driver window_driver = {
	.name = "hira_window",
	.id_table = window_ids,
	.probe = window_probe,
	.remove = window_remove,
};

static int __init window_init(void)
{
	mutex_init(&region.lock);
	return pci_register_driver(&window_driver);
}

static void __exit window_exit(void)
{
	pci_unregister_driver(&window_driver);
}

module_init(window_init);
module_exit(window_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hira: per-process slices of the VM's ivshmem region");
