/* allocations: makes COUNT buffers of MB MiB each (writing to each, so that
 * the device really holds it), prints what each creation returned, releases
 * the first, makes one more, then releases everything and makes one last.
 * Natively every creation succeeds; under a hira quota the ones past it fail
 * with CL_MEM_OBJECT_ALLOCATION_FAILURE and the memory released is usable
 * again; a creation the implementation refuses holds nothing. With a third
 * argument `images`, the objects are 2D images (RGBA, 8 bits a channel) of
 * MB MiB each, whose size only the implementation knows. Usage:
 * ocl_allocations MB COUNT [images] */
#include "ocl_common.h"

#define MAX_BUFFERS 64

static int images; /* make images, not buffers */

static cl_mem make(cl_context ctx, cl_command_queue q, size_t bytes, const char *what) {
    cl_int err = CL_SUCCESS;
    cl_mem m;
    if (images) {
        const cl_image_format format = {CL_RGBA, CL_UNORM_INT8};
        cl_image_desc desc;
        memset(&desc, 0, sizeof(desc));
        desc.image_type = CL_MEM_OBJECT_IMAGE2D;
        desc.image_width = 1024;
        desc.image_height = bytes / (1024 * 4);
        m = clCreateImage(ctx, CL_MEM_READ_WRITE, &format, &desc, NULL, &err);
    } else {
        m = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    }
    printf("%s: %d\n", what, err);
    if (m == NULL) {
        if (err == CL_SUCCESS) printf("%s: NULL with CL_SUCCESS\n", what);
    } else if (!images) {
        const unsigned char one = 1;
        CHECK("clEnqueueWriteBuffer", clEnqueueWriteBuffer(q, m, CL_TRUE, 0, 1, &one, 0, NULL, NULL));
    }
    return m;
}

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "images") == 0)) {
        fprintf(stderr, "usage: ocl_allocations MB COUNT [images]\n");
        return 2;
    }
    images = argc == 4;
    const size_t bytes = (size_t)strtoul(argv[1], NULL, 10) << 20;
    int count = atoi(argv[2]);
    if (count < 1 || count > MAX_BUFFERS || bytes == 0) return 2;
    cl_platform_id platform;
    cl_device_id dev;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);
    cl_mem m[MAX_BUFFERS + 2] = {0};
    char what[64];
    /* A creation the implementation refuses (two access flags) holds nothing. */
    cl_int refused = CL_SUCCESS;
    cl_mem none = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_READ_ONLY, bytes, NULL, &refused);
    printf("an invalid creation: %d, an object %d\n", refused, none != NULL);
    for (int i = 0; i < count; i++) {
        snprintf(what, sizeof(what), "buffer %d", i);
        m[i] = make(ctx, q, bytes, what);
    }
    if (m[0] != NULL) {
        CHECK("clReleaseMemObject", clReleaseMemObject(m[0]));
        m[0] = NULL;
    }
    m[count] = make(ctx, q, bytes, "after releasing buffer 0");
    for (int i = 0; i <= count; i++) {
        if (m[i] != NULL) CHECK("clReleaseMemObject", clReleaseMemObject(m[i]));
    }
    CHECK("clFinish", clFinish(q));
    m[count + 1] = make(ctx, q, bytes, "after releasing all");
    if (m[count + 1] != NULL) CHECK("clReleaseMemObject", clReleaseMemObject(m[count + 1]));
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return 0;
}
