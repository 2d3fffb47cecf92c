/* image_copy: 64x32 CL_RGBA / CL_UNSIGNED_INT8 2D images.
 *   src (clCreateImage, COPY_HOST_PTR) --kernel read_imageui/write_imageui-->
 *   dst --clEnqueueCopyImage--> dst2 --clEnqueueReadImage--> host. */
#include "ocl_common.h"

#define W 64
#define H 32

static const char *src =
    "__kernel void copy_img(__read_only image2d_t src, __write_only image2d_t dst,\n"
    "                       sampler_t smp) {\n"
    "    int2 c = (int2)(get_global_id(0), get_global_id(1));\n"
    "    uint4 p = read_imageui(src, smp, c);\n"
    "    write_imageui(dst, c, p);\n"
    "}\n";

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);

    cl_bool img_support = CL_FALSE;
    CHECK("clGetDeviceInfo(IMAGE_SUPPORT)",
          clGetDeviceInfo(dev, CL_DEVICE_IMAGE_SUPPORT, sizeof(img_support), &img_support, NULL));
    ocl_require("image support", img_support == CL_TRUE);

    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);

    /* supported formats: size query, then fetch */
    cl_uint nfmt = 0;
    CHECK("clGetSupportedImageFormats(count)",
          clGetSupportedImageFormats(ctx, CL_MEM_READ_WRITE, CL_MEM_OBJECT_IMAGE2D, 0, NULL, &nfmt));
    ocl_require("format count > 0", nfmt > 0);
    cl_image_format *fmts = calloc(nfmt, sizeof(cl_image_format));
    if (!fmts)
        return 1;
    CHECK("clGetSupportedImageFormats",
          clGetSupportedImageFormats(ctx, CL_MEM_READ_WRITE, CL_MEM_OBJECT_IMAGE2D, nfmt, fmts, NULL));
    int found = 0;
    for (cl_uint i = 0; i < nfmt; i++)
        if (fmts[i].image_channel_order == CL_RGBA &&
            fmts[i].image_channel_data_type == CL_UNSIGNED_INT8)
            found = 1;
    free(fmts);
    ocl_require("RGBA/UNSIGNED_INT8 supported", found);

    static unsigned char host[H][W][4], out[H][W][4], sub[8][16][4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            host[y][x][0] = (unsigned char)(x * 4);
            host[y][x][1] = (unsigned char)(y * 8);
            host[y][x][2] = (unsigned char)((x * 7 + y * 13) & 0xff);
            host[y][x][3] = (unsigned char)(255 - x - y);
        }

    cl_image_format fmt = {CL_RGBA, CL_UNSIGNED_INT8};
    cl_image_desc desc;
    memset(&desc, 0, sizeof(desc));
    desc.image_type = CL_MEM_OBJECT_IMAGE2D;
    desc.image_width = W;
    desc.image_height = H;

    cl_mem isrc = clCreateImage(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, &fmt, &desc, host, &err);
    CHECK("clCreateImage(src)", err);
    cl_mem idst = clCreateImage(ctx, CL_MEM_READ_WRITE, &fmt, &desc, NULL, &err);
    CHECK("clCreateImage(dst)", err);
    cl_mem idst2 = clCreateImage(ctx, CL_MEM_READ_WRITE, &fmt, &desc, NULL, &err);
    CHECK("clCreateImage(dst2)", err);

    size_t iw = 0, ih = 0, ies = 0;
    cl_image_format qfmt = {0, 0};
    CHECK("clGetImageInfo(WIDTH)", clGetImageInfo(isrc, CL_IMAGE_WIDTH, sizeof(iw), &iw, NULL));
    CHECK("clGetImageInfo(HEIGHT)", clGetImageInfo(isrc, CL_IMAGE_HEIGHT, sizeof(ih), &ih, NULL));
    CHECK("clGetImageInfo(ELEMENT_SIZE)",
          clGetImageInfo(isrc, CL_IMAGE_ELEMENT_SIZE, sizeof(ies), &ies, NULL));
    CHECK("clGetImageInfo(FORMAT)", clGetImageInfo(isrc, CL_IMAGE_FORMAT, sizeof(qfmt), &qfmt, NULL));
    printf("image width: %zu\n", iw);
    printf("image height: %zu\n", ih);
    printf("image element size: %zu\n", ies);
    printf("image format: 0x%x 0x%x\n", (unsigned)qfmt.image_channel_order,
           (unsigned)qfmt.image_channel_data_type);
    cl_mem_object_type mtype = 0;
    CHECK("clGetMemObjectInfo(TYPE)", clGetMemObjectInfo(isrc, CL_MEM_TYPE, sizeof(mtype), &mtype, NULL));
    printf("mem type is IMAGE2D: %d\n", mtype == CL_MEM_OBJECT_IMAGE2D);

    cl_sampler smp = clCreateSampler(ctx, CL_FALSE, CL_ADDRESS_CLAMP_TO_EDGE, CL_FILTER_NEAREST, &err);
    CHECK("clCreateSampler", err);

    cl_program prog = ocl_build(ctx, dev, src, NULL);
    cl_kernel k = ocl_kernel(prog, "copy_img");
    CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &isrc));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_mem), &idst));
    CHECK("clSetKernelArg(2)", clSetKernelArg(k, 2, sizeof(cl_sampler), &smp));
    size_t gws[2] = {W, H};
    CHECK("clEnqueueNDRangeKernel", clEnqueueNDRangeKernel(q, k, 2, NULL, gws, NULL, 0, NULL, NULL));

    size_t origin[3] = {0, 0, 0}, region[3] = {W, H, 1};
    CHECK("clEnqueueCopyImage",
          clEnqueueCopyImage(q, idst, idst2, origin, origin, region, 0, NULL, NULL));
    memset(out, 0, sizeof(out));
    CHECK("clEnqueueReadImage",
          clEnqueueReadImage(q, idst2, CL_TRUE, origin, region, 0, 0, out, 0, NULL, NULL));

    /* sub-region read: 16x8 pixels at (40, 20) with an explicit row pitch */
    size_t sorigin[3] = {40, 20, 0}, sregion[3] = {16, 8, 1};
    CHECK("clEnqueueReadImage(subregion)",
          clEnqueueReadImage(q, idst, CL_TRUE, sorigin, sregion, 16 * 4, 0, sub, 0, NULL, NULL));

    unsigned mismatches = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 4; c++)
                if (out[y][x][c] != host[y][x][c])
                    mismatches++;
    unsigned sub_mismatches = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++)
            for (int c = 0; c < 4; c++)
                if (sub[y][x][c] != host[20 + y][40 + x][c])
                    sub_mismatches++;
    printf("mismatches: %u\n", mismatches);
    printf("subregion mismatches: %u\n", sub_mismatches);
    printf("pixel(5,3) = %u %u %u %u\n", out[3][5][0], out[3][5][1], out[3][5][2], out[3][5][3]);
    printf("pixel(63,31) = %u %u %u %u\n", out[31][63][0], out[31][63][1], out[31][63][2],
           out[31][63][3]);
    printf("checksum = %016llx\n", (unsigned long long)ocl_fnv1a(out, sizeof(out)));
    printf("subregion checksum = %016llx\n", (unsigned long long)ocl_fnv1a(sub, sizeof(sub)));

    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseSampler", clReleaseSampler(smp));
    CHECK("clReleaseMemObject(src)", clReleaseMemObject(isrc));
    CHECK("clReleaseMemObject(dst)", clReleaseMemObject(idst));
    CHECK("clReleaseMemObject(dst2)", clReleaseMemObject(idst2));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (mismatches || sub_mismatches)
        return 1;
    printf("OK\n");
    return 0;
}
