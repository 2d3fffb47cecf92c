/* info_queries: clGet*Info with the size-query pattern (param_value NULL ->
 * param_value_size_ret, then fetch), handle-valued answers compared with the
 * handles held, reference counts across retain/release.  Only booleans and
 * portable values are printed. */
#include "ocl_common.h"

static const char *src =
    "__kernel void alpha(__global float *out, __global const float *in, float s) {\n"
    "    out[get_global_id(0)] = in[get_global_id(0)] * s;\n"
    "}\n"
    "__kernel __attribute__((reqd_work_group_size(4, 2, 1)))\n"
    "void beta(__global int *p, __local int *tmp, int n) {\n"
    "    tmp[get_local_id(0)] = n;\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    p[get_global_id(0)] = tmp[0];\n"
    "}\n";

static unsigned fails;

static void expect_true(const char *what, int cond)
{
    printf("%s: %d\n", what, cond ? 1 : 0);
    if (!cond)
        fails++;
}

/* Size query then fetch, for string-valued platform/device info. */
static char *platform_str(cl_platform_id p, cl_platform_info param, const char *name)
{
    size_t sz = 0;
    char label[96];
    snprintf(label, sizeof(label), "clGetPlatformInfo(%s, size)", name);
    CHECK(label, clGetPlatformInfo(p, param, 0, NULL, &sz));
    char *s = calloc(sz + 1, 1);
    if (!s)
        exit(1);
    size_t sz2 = 0;
    snprintf(label, sizeof(label), "clGetPlatformInfo(%s)", name);
    CHECK(label, clGetPlatformInfo(p, param, sz, s, &sz2));
    snprintf(label, sizeof(label), "%s size == strlen + 1", name);
    expect_true(label, sz2 == sz && strlen(s) + 1 == sz);
    return s;
}

static char *device_str(cl_device_id d, cl_device_info param, const char *name)
{
    size_t sz = 0;
    char label[96];
    snprintf(label, sizeof(label), "clGetDeviceInfo(%s, size)", name);
    CHECK(label, clGetDeviceInfo(d, param, 0, NULL, &sz));
    char *s = calloc(sz + 1, 1);
    if (!s)
        exit(1);
    size_t sz2 = 0;
    snprintf(label, sizeof(label), "clGetDeviceInfo(%s)", name);
    CHECK(label, clGetDeviceInfo(d, param, sz, s, &sz2));
    snprintf(label, sizeof(label), "%s size == strlen + 1", name);
    expect_true(label, sz2 == sz && strlen(s) + 1 == sz);
    return s;
}

static cl_uint ctx_refs(cl_context c)
{
    cl_uint n = 0;
    CHECK("clGetContextInfo(REFERENCE_COUNT)", clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof(n), &n, NULL));
    return n;
}
static cl_uint queue_refs(cl_command_queue q)
{
    cl_uint n = 0;
    CHECK("clGetCommandQueueInfo(REFERENCE_COUNT)",
          clGetCommandQueueInfo(q, CL_QUEUE_REFERENCE_COUNT, sizeof(n), &n, NULL));
    return n;
}
static cl_uint prog_refs(cl_program p)
{
    cl_uint n = 0;
    CHECK("clGetProgramInfo(REFERENCE_COUNT)", clGetProgramInfo(p, CL_PROGRAM_REFERENCE_COUNT, sizeof(n), &n, NULL));
    return n;
}
static cl_uint kernel_refs(cl_kernel k)
{
    cl_uint n = 0;
    CHECK("clGetKernelInfo(REFERENCE_COUNT)", clGetKernelInfo(k, CL_KERNEL_REFERENCE_COUNT, sizeof(n), &n, NULL));
    return n;
}
static cl_uint mem_refs(cl_mem m)
{
    cl_uint n = 0;
    CHECK("clGetMemObjectInfo(REFERENCE_COUNT)", clGetMemObjectInfo(m, CL_MEM_REFERENCE_COUNT, sizeof(n), &n, NULL));
    return n;
}
static cl_uint sampler_refs(cl_sampler s)
{
    cl_uint n = 0;
    CHECK("clGetSamplerInfo(REFERENCE_COUNT)", clGetSamplerInfo(s, CL_SAMPLER_REFERENCE_COUNT, sizeof(n), &n, NULL));
    return n;
}

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);

    /* ---- platform ---- */
    printf("-- platform\n");
    char *profile = platform_str(platform, CL_PLATFORM_PROFILE, "PLATFORM_PROFILE");
    printf("platform profile: %s\n", profile);
    char *pver = platform_str(platform, CL_PLATFORM_VERSION, "PLATFORM_VERSION");
    expect_true("platform version starts with \"OpenCL \"", strncmp(pver, "OpenCL ", 7) == 0);
    char *pname = platform_str(platform, CL_PLATFORM_NAME, "PLATFORM_NAME");
    expect_true("platform name non-empty", pname[0] != '\0');
    char *pext = platform_str(platform, CL_PLATFORM_EXTENSIONS, "PLATFORM_EXTENSIONS");
    expect_true("platform extensions include cl_khr_icd", strstr(pext, "cl_khr_icd") != NULL);
    free(profile);
    free(pver);
    free(pname);
    free(pext);
    void *fn = clGetExtensionFunctionAddressForPlatform(platform, "clHiraNoSuchFunctionXYZ");
    expect_true("clGetExtensionFunctionAddressForPlatform(unknown) == NULL", fn == NULL);

    /* ---- device ---- */
    printf("-- device\n");
    cl_uint ndev = 0;
    CHECK("clGetDeviceIDs(count)", clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, NULL, &ndev));
    expect_true("device count >= 1", ndev >= 1);
    cl_platform_id dplat = NULL;
    size_t sz = 0;
    CHECK("clGetDeviceInfo(PLATFORM, size)", clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, 0, NULL, &sz));
    printf("CL_DEVICE_PLATFORM size == sizeof(cl_platform_id): %d\n", sz == sizeof(cl_platform_id));
    CHECK("clGetDeviceInfo(PLATFORM)", clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof(dplat), &dplat, NULL));
    expect_true("CL_DEVICE_PLATFORM == platform", dplat == platform);
    cl_device_type dtype = 0;
    CHECK("clGetDeviceInfo(TYPE)", clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof(dtype), &dtype, NULL));
    printf("device type has CPU bit: %d\n", (dtype & CL_DEVICE_TYPE_CPU) != 0);
    cl_bool avail = CL_FALSE, compiler = CL_FALSE, little = CL_FALSE;
    CHECK("clGetDeviceInfo(AVAILABLE)", clGetDeviceInfo(dev, CL_DEVICE_AVAILABLE, sizeof(avail), &avail, NULL));
    CHECK("clGetDeviceInfo(COMPILER_AVAILABLE)",
          clGetDeviceInfo(dev, CL_DEVICE_COMPILER_AVAILABLE, sizeof(compiler), &compiler, NULL));
    CHECK("clGetDeviceInfo(ENDIAN_LITTLE)", clGetDeviceInfo(dev, CL_DEVICE_ENDIAN_LITTLE, sizeof(little), &little, NULL));
    printf("available %u, compiler %u, little endian %u\n", avail, compiler, little);
    cl_uint cu = 0, dims = 0;
    CHECK("clGetDeviceInfo(MAX_COMPUTE_UNITS)", clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL));
    expect_true("max compute units > 0", cu > 0);
    CHECK("clGetDeviceInfo(MAX_WORK_ITEM_DIMENSIONS)",
          clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof(dims), &dims, NULL));
    expect_true("max work item dimensions >= 3", dims >= 3);
    /* array-valued: size must be dims * sizeof(size_t) */
    CHECK("clGetDeviceInfo(MAX_WORK_ITEM_SIZES, size)",
          clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_SIZES, 0, NULL, &sz));
    expect_true("MAX_WORK_ITEM_SIZES size == dims * sizeof(size_t)", sz == dims * sizeof(size_t));
    size_t *wis = calloc(dims, sizeof(size_t));
    if (!wis)
        return 1;
    CHECK("clGetDeviceInfo(MAX_WORK_ITEM_SIZES)", clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_ITEM_SIZES, sz, wis, NULL));
    expect_true("max work item sizes >= 1", wis[0] >= 1 && wis[1] >= 1 && wis[2] >= 1);
    free(wis);
    cl_ulong gmem = 0;
    CHECK("clGetDeviceInfo(GLOBAL_MEM_SIZE)", clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(gmem), &gmem, NULL));
    expect_true("global mem size >= 1 MiB", gmem >= (1u << 20));
    char *dver = device_str(dev, CL_DEVICE_VERSION, "DEVICE_VERSION");
    expect_true("device version starts with \"OpenCL \"", strncmp(dver, "OpenCL ", 7) == 0);
    char *cver = device_str(dev, CL_DEVICE_OPENCL_C_VERSION, "DEVICE_OPENCL_C_VERSION");
    expect_true("OpenCL C version starts with \"OpenCL C \"", strncmp(cver, "OpenCL C ", 9) == 0);
    char *dext = device_str(dev, CL_DEVICE_EXTENSIONS, "DEVICE_EXTENSIONS");
    char *dprof = device_str(dev, CL_DEVICE_PROFILE, "DEVICE_PROFILE");
    printf("device profile: %s\n", dprof);
    char *dname = device_str(dev, CL_DEVICE_NAME, "DEVICE_NAME");
    expect_true("device name non-empty", dname[0] != '\0');
    free(dver);
    free(cver);
    free(dext);
    free(dprof);
    free(dname);
    cl_device_id parent_dev = (cl_device_id)&parent_dev;
    CHECK("clGetDeviceInfo(PARENT_DEVICE)",
          clGetDeviceInfo(dev, CL_DEVICE_PARENT_DEVICE, sizeof(parent_dev), &parent_dev, NULL));
    expect_true("CL_DEVICE_PARENT_DEVICE == NULL", parent_dev == NULL);
    /* a fixed-size param with a too-small buffer */
    char small[2];
    ocl_expect("clGetDeviceInfo(GLOBAL_MEM_SIZE, 2-byte buffer)",
               clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(small), small, NULL), CL_INVALID_VALUE);

    /* ---- context ---- */
    printf("-- context\n");
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
    cl_context ctx = clCreateContext(props, 1, &dev, NULL, NULL, &err);
    CHECK("clCreateContext", err);
    cl_uint r0 = ctx_refs(ctx);
    printf("context refcount fresh: %u\n", r0);
    CHECK("clRetainContext", clRetainContext(ctx));
    cl_uint r1 = ctx_refs(ctx);
    CHECK("clReleaseContext", clReleaseContext(ctx));
    cl_uint r2 = ctx_refs(ctx);
    expect_true("context refcount +1 after retain", r1 == r0 + 1);
    expect_true("context refcount restored after release", r2 == r0);
    cl_uint cnd = 0;
    CHECK("clGetContextInfo(NUM_DEVICES)", clGetContextInfo(ctx, CL_CONTEXT_NUM_DEVICES, sizeof(cnd), &cnd, NULL));
    printf("CL_CONTEXT_NUM_DEVICES: %u\n", cnd);
    CHECK("clGetContextInfo(DEVICES, size)", clGetContextInfo(ctx, CL_CONTEXT_DEVICES, 0, NULL, &sz));
    expect_true("CL_CONTEXT_DEVICES size == 1 device", sz == sizeof(cl_device_id));
    cl_device_id cdev = NULL;
    CHECK("clGetContextInfo(DEVICES)", clGetContextInfo(ctx, CL_CONTEXT_DEVICES, sizeof(cdev), &cdev, NULL));
    expect_true("CL_CONTEXT_DEVICES[0] == dev", cdev == dev);
    CHECK("clGetContextInfo(PROPERTIES, size)", clGetContextInfo(ctx, CL_CONTEXT_PROPERTIES, 0, NULL, &sz));
    expect_true("CL_CONTEXT_PROPERTIES size == 3 entries", sz == sizeof(props));
    cl_context_properties got[3] = {0, 0, 0};
    if (sz == sizeof(props)) {
        CHECK("clGetContextInfo(PROPERTIES)", clGetContextInfo(ctx, CL_CONTEXT_PROPERTIES, sz, got, NULL));
        expect_true("CL_CONTEXT_PROPERTIES == {PLATFORM, platform, 0}",
                    got[0] == CL_CONTEXT_PLATFORM && got[1] == (cl_context_properties)platform && got[2] == 0);
    }

    /* ---- command queue ---- */
    printf("-- command queue\n");
    cl_command_queue q = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
    CHECK("clCreateCommandQueue", err);
    cl_context qctx = NULL;
    cl_device_id qdev = NULL;
    cl_command_queue_properties qprops = 0;
    CHECK("clGetCommandQueueInfo(CONTEXT)", clGetCommandQueueInfo(q, CL_QUEUE_CONTEXT, sizeof(qctx), &qctx, NULL));
    CHECK("clGetCommandQueueInfo(DEVICE)", clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof(qdev), &qdev, NULL));
    CHECK("clGetCommandQueueInfo(PROPERTIES)",
          clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof(qprops), &qprops, NULL));
    expect_true("CL_QUEUE_CONTEXT == ctx", qctx == ctx);
    expect_true("CL_QUEUE_DEVICE == dev", qdev == dev);
    printf("CL_QUEUE_PROPERTIES: 0x%llx\n", (unsigned long long)qprops);
    r0 = queue_refs(q);
    printf("queue refcount fresh: %u\n", r0);
    CHECK("clRetainCommandQueue", clRetainCommandQueue(q));
    r1 = queue_refs(q);
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    r2 = queue_refs(q);
    expect_true("queue refcount +1 after retain", r1 == r0 + 1);
    expect_true("queue refcount restored after release", r2 == r0);

    /* ---- program ---- */
    printf("-- program\n");
    cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
    CHECK("clCreateProgramWithSource", err);
    cl_build_status bst = 99;
    CHECK("clGetProgramBuildInfo(BUILD_STATUS, before build)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_STATUS, sizeof(bst), &bst, NULL));
    printf("build status before build: %d\n", (int)bst);
    CHECK("clBuildProgram", clBuildProgram(prog, 1, &dev, "-cl-kernel-arg-info", NULL, NULL));
    CHECK("clGetProgramBuildInfo(BUILD_STATUS)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_STATUS, sizeof(bst), &bst, NULL));
    printf("build status: %d\n", (int)bst);
    CHECK("clGetProgramBuildInfo(BUILD_OPTIONS, size)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_OPTIONS, 0, NULL, &sz));
    char *bopts = calloc(sz + 1, 1);
    if (!bopts)
        return 1;
    CHECK("clGetProgramBuildInfo(BUILD_OPTIONS)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_OPTIONS, sz, bopts, NULL));
    printf("build options: \"%s\"\n", bopts);
    free(bopts);
    cl_uint pnd = 0;
    CHECK("clGetProgramInfo(NUM_DEVICES)", clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof(pnd), &pnd, NULL));
    printf("CL_PROGRAM_NUM_DEVICES: %u\n", pnd);
    cl_device_id pdev = NULL;
    CHECK("clGetProgramInfo(DEVICES)", clGetProgramInfo(prog, CL_PROGRAM_DEVICES, sizeof(pdev), &pdev, NULL));
    expect_true("CL_PROGRAM_DEVICES[0] == dev", pdev == dev);
    cl_context pctx = NULL;
    CHECK("clGetProgramInfo(CONTEXT)", clGetProgramInfo(prog, CL_PROGRAM_CONTEXT, sizeof(pctx), &pctx, NULL));
    expect_true("CL_PROGRAM_CONTEXT == ctx", pctx == ctx);
    CHECK("clGetProgramInfo(SOURCE, size)", clGetProgramInfo(prog, CL_PROGRAM_SOURCE, 0, NULL, &sz));
    expect_true("CL_PROGRAM_SOURCE size == strlen(src) + 1", sz == strlen(src) + 1);
    char *psrc = calloc(sz + 1, 1);
    if (!psrc)
        return 1;
    CHECK("clGetProgramInfo(SOURCE)", clGetProgramInfo(prog, CL_PROGRAM_SOURCE, sz, psrc, NULL));
    expect_true("CL_PROGRAM_SOURCE == src", strcmp(psrc, src) == 0);
    free(psrc);
    size_t nkern = 0;
    CHECK("clGetProgramInfo(NUM_KERNELS)", clGetProgramInfo(prog, CL_PROGRAM_NUM_KERNELS, sizeof(nkern), &nkern, NULL));
    printf("CL_PROGRAM_NUM_KERNELS: %zu\n", nkern);
    CHECK("clGetProgramInfo(KERNEL_NAMES, size)", clGetProgramInfo(prog, CL_PROGRAM_KERNEL_NAMES, 0, NULL, &sz));
    char *names = calloc(sz + 1, 1);
    if (!names)
        return 1;
    CHECK("clGetProgramInfo(KERNEL_NAMES)", clGetProgramInfo(prog, CL_PROGRAM_KERNEL_NAMES, sz, names, NULL));
    /* order is implementation-defined: print membership only */
    expect_true("kernel names contain alpha and beta, one ';'",
                strstr(names, "alpha") && strstr(names, "beta") && strchr(names, ';') &&
                    strchr(names, ';') == strrchr(names, ';') && strlen(names) == strlen("alpha;beta"));
    free(names);
    size_t binsize = 0;
    CHECK("clGetProgramInfo(BINARY_SIZES)", clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(binsize), &binsize, NULL));
    expect_true("binary size > 0", binsize > 0);
    r0 = prog_refs(prog);
    printf("program refcount fresh: %u\n", r0);
    CHECK("clRetainProgram", clRetainProgram(prog));
    r1 = prog_refs(prog);
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    r2 = prog_refs(prog);
    expect_true("program refcount +1 after retain", r1 == r0 + 1);
    expect_true("program refcount restored after release", r2 == r0);

    /* ---- kernel ---- */
    printf("-- kernel\n");
    cl_kernel ka = clCreateKernel(prog, "alpha", &err);
    CHECK("clCreateKernel(alpha)", err);
    cl_kernel kb = clCreateKernel(prog, "beta", &err);
    CHECK("clCreateKernel(beta)", err);
    CHECK("clGetKernelInfo(FUNCTION_NAME, size)", clGetKernelInfo(ka, CL_KERNEL_FUNCTION_NAME, 0, NULL, &sz));
    printf("CL_KERNEL_FUNCTION_NAME size: %zu\n", sz);
    char fname[32] = {0};
    if (sz > sizeof(fname))
        return 1;
    CHECK("clGetKernelInfo(FUNCTION_NAME)", clGetKernelInfo(ka, CL_KERNEL_FUNCTION_NAME, sz, fname, NULL));
    printf("CL_KERNEL_FUNCTION_NAME: %s\n", fname);
    cl_uint nargs = 0;
    CHECK("clGetKernelInfo(NUM_ARGS)", clGetKernelInfo(ka, CL_KERNEL_NUM_ARGS, sizeof(nargs), &nargs, NULL));
    printf("CL_KERNEL_NUM_ARGS(alpha): %u\n", nargs);
    CHECK("clGetKernelInfo(NUM_ARGS)", clGetKernelInfo(kb, CL_KERNEL_NUM_ARGS, sizeof(nargs), &nargs, NULL));
    printf("CL_KERNEL_NUM_ARGS(beta): %u\n", nargs);
    cl_program kprog = NULL;
    cl_context kctx = NULL;
    CHECK("clGetKernelInfo(PROGRAM)", clGetKernelInfo(ka, CL_KERNEL_PROGRAM, sizeof(kprog), &kprog, NULL));
    CHECK("clGetKernelInfo(CONTEXT)", clGetKernelInfo(ka, CL_KERNEL_CONTEXT, sizeof(kctx), &kctx, NULL));
    expect_true("CL_KERNEL_PROGRAM == prog", kprog == prog);
    expect_true("CL_KERNEL_CONTEXT == ctx", kctx == ctx);
    r0 = kernel_refs(ka);
    printf("kernel refcount fresh: %u\n", r0);
    CHECK("clRetainKernel", clRetainKernel(ka));
    r1 = kernel_refs(ka);
    CHECK("clReleaseKernel", clReleaseKernel(ka));
    r2 = kernel_refs(ka);
    expect_true("kernel refcount +1 after retain", r1 == r0 + 1);
    expect_true("kernel refcount restored after release", r2 == r0);

    /* kernel argument info (needs -cl-kernel-arg-info) */
    for (cl_uint i = 0; i < 3; i++) {
        char aname[32] = {0}, tname[32] = {0};
        cl_kernel_arg_address_qualifier aq = 0;
        cl_kernel_arg_type_qualifier tq = 0;
        CHECK("clGetKernelArgInfo(NAME, size)", clGetKernelArgInfo(ka, i, CL_KERNEL_ARG_NAME, 0, NULL, &sz));
        if (sz > sizeof(aname))
            return 1;
        CHECK("clGetKernelArgInfo(NAME)", clGetKernelArgInfo(ka, i, CL_KERNEL_ARG_NAME, sz, aname, NULL));
        CHECK("clGetKernelArgInfo(TYPE_NAME, size)", clGetKernelArgInfo(ka, i, CL_KERNEL_ARG_TYPE_NAME, 0, NULL, &sz));
        if (sz > sizeof(tname))
            return 1;
        CHECK("clGetKernelArgInfo(TYPE_NAME)", clGetKernelArgInfo(ka, i, CL_KERNEL_ARG_TYPE_NAME, sz, tname, NULL));
        CHECK("clGetKernelArgInfo(ADDRESS_QUALIFIER)",
              clGetKernelArgInfo(ka, i, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof(aq), &aq, NULL));
        CHECK("clGetKernelArgInfo(TYPE_QUALIFIER)",
              clGetKernelArgInfo(ka, i, CL_KERNEL_ARG_TYPE_QUALIFIER, sizeof(tq), &tq, NULL));
        printf("alpha arg %u: name %s, type %s, address 0x%x, type qualifier 0x%llx\n", i, aname, tname,
               (unsigned)aq, (unsigned long long)tq);
    }
    ocl_expect("clGetKernelArgInfo(index out of range)",
               clGetKernelArgInfo(ka, 3, CL_KERNEL_ARG_NAME, 0, NULL, &sz), CL_INVALID_ARG_INDEX);

    size_t kwg = 0, cwg[3] = {9, 9, 9}, pwm = 0;
    CHECK("clGetKernelWorkGroupInfo(WORK_GROUP_SIZE)",
          clGetKernelWorkGroupInfo(ka, dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg, NULL));
    expect_true("CL_KERNEL_WORK_GROUP_SIZE >= 1", kwg >= 1);
    CHECK("clGetKernelWorkGroupInfo(COMPILE_WORK_GROUP_SIZE, alpha)",
          clGetKernelWorkGroupInfo(ka, dev, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof(cwg), cwg, NULL));
    printf("compile work-group size(alpha): %zu %zu %zu\n", cwg[0], cwg[1], cwg[2]);
    CHECK("clGetKernelWorkGroupInfo(COMPILE_WORK_GROUP_SIZE, beta, size)",
          clGetKernelWorkGroupInfo(kb, dev, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, 0, NULL, &sz));
    printf("COMPILE_WORK_GROUP_SIZE size == 3 * sizeof(size_t): %d\n", sz == 3 * sizeof(size_t));
    CHECK("clGetKernelWorkGroupInfo(COMPILE_WORK_GROUP_SIZE, beta)",
          clGetKernelWorkGroupInfo(kb, dev, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof(cwg), cwg, NULL));
    printf("compile work-group size(beta): %zu %zu %zu\n", cwg[0], cwg[1], cwg[2]);
    CHECK("clGetKernelWorkGroupInfo(PREFERRED_WORK_GROUP_SIZE_MULTIPLE)",
          clGetKernelWorkGroupInfo(ka, dev, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE, sizeof(pwm), &pwm, NULL));
    expect_true("preferred work-group size multiple >= 1", pwm >= 1);
    cl_ulong lmem = 0;
    CHECK("clGetKernelWorkGroupInfo(LOCAL_MEM_SIZE)",
          clGetKernelWorkGroupInfo(ka, dev, CL_KERNEL_LOCAL_MEM_SIZE, sizeof(lmem), &lmem, NULL));

    /* ---- memory object ---- */
    printf("-- mem object\n");
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_ONLY, 1024, NULL, &err);
    CHECK("clCreateBuffer", err);
    cl_mem_object_type mtype = 0;
    cl_mem_flags mflags = 0;
    size_t msize = 0, moff = 99;
    void *mhost = (void *)&mhost;
    cl_uint mapc = 99;
    cl_context mctx = NULL;
    cl_mem massoc = (cl_mem)&massoc;
    CHECK("clGetMemObjectInfo(TYPE)", clGetMemObjectInfo(buf, CL_MEM_TYPE, sizeof(mtype), &mtype, NULL));
    CHECK("clGetMemObjectInfo(FLAGS)", clGetMemObjectInfo(buf, CL_MEM_FLAGS, sizeof(mflags), &mflags, NULL));
    CHECK("clGetMemObjectInfo(SIZE)", clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof(msize), &msize, NULL));
    CHECK("clGetMemObjectInfo(HOST_PTR)", clGetMemObjectInfo(buf, CL_MEM_HOST_PTR, sizeof(mhost), &mhost, NULL));
    CHECK("clGetMemObjectInfo(MAP_COUNT)", clGetMemObjectInfo(buf, CL_MEM_MAP_COUNT, sizeof(mapc), &mapc, NULL));
    CHECK("clGetMemObjectInfo(CONTEXT)", clGetMemObjectInfo(buf, CL_MEM_CONTEXT, sizeof(mctx), &mctx, NULL));
    CHECK("clGetMemObjectInfo(ASSOCIATED_MEMOBJECT)",
          clGetMemObjectInfo(buf, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof(massoc), &massoc, NULL));
    CHECK("clGetMemObjectInfo(OFFSET)", clGetMemObjectInfo(buf, CL_MEM_OFFSET, sizeof(moff), &moff, NULL));
    printf("CL_MEM_TYPE is BUFFER: %d\n", mtype == CL_MEM_OBJECT_BUFFER);
    printf("CL_MEM_FLAGS: 0x%llx\n", (unsigned long long)mflags);
    printf("CL_MEM_SIZE: %zu\n", msize);
    expect_true("CL_MEM_HOST_PTR == NULL", mhost == NULL);
    printf("CL_MEM_MAP_COUNT: %u\n", mapc);
    expect_true("CL_MEM_CONTEXT == ctx", mctx == ctx);
    expect_true("CL_MEM_ASSOCIATED_MEMOBJECT == NULL", massoc == NULL);
    printf("CL_MEM_OFFSET: %zu\n", moff);
    r0 = mem_refs(buf);
    printf("mem refcount fresh: %u\n", r0);
    CHECK("clRetainMemObject", clRetainMemObject(buf));
    r1 = mem_refs(buf);
    CHECK("clReleaseMemObject", clReleaseMemObject(buf));
    r2 = mem_refs(buf);
    expect_true("mem refcount +1 after retain", r1 == r0 + 1);
    expect_true("mem refcount restored after release", r2 == r0);
    /* the buffer is also set as a kernel argument before both are released */
    CHECK("clSetKernelArg(alpha, 1)", clSetKernelArg(ka, 1, sizeof(cl_mem), &buf));

    /* ---- sampler ---- */
    printf("-- sampler\n");
    cl_sampler smp = clCreateSampler(ctx, CL_TRUE, CL_ADDRESS_REPEAT, CL_FILTER_LINEAR, &err);
    CHECK("clCreateSampler", err);
    cl_bool norm = CL_FALSE;
    cl_addressing_mode am = 0;
    cl_filter_mode fm = 0;
    cl_context sctx = NULL;
    CHECK("clGetSamplerInfo(CONTEXT)", clGetSamplerInfo(smp, CL_SAMPLER_CONTEXT, sizeof(sctx), &sctx, NULL));
    CHECK("clGetSamplerInfo(NORMALIZED_COORDS)",
          clGetSamplerInfo(smp, CL_SAMPLER_NORMALIZED_COORDS, sizeof(norm), &norm, NULL));
    CHECK("clGetSamplerInfo(ADDRESSING_MODE)", clGetSamplerInfo(smp, CL_SAMPLER_ADDRESSING_MODE, sizeof(am), &am, NULL));
    CHECK("clGetSamplerInfo(FILTER_MODE)", clGetSamplerInfo(smp, CL_SAMPLER_FILTER_MODE, sizeof(fm), &fm, NULL));
    expect_true("CL_SAMPLER_CONTEXT == ctx", sctx == ctx);
    printf("normalized %u, addressing 0x%x, filter 0x%x\n", norm, (unsigned)am, (unsigned)fm);
    r0 = sampler_refs(smp);
    printf("sampler refcount fresh: %u\n", r0);
    CHECK("clRetainSampler", clRetainSampler(smp));
    r1 = sampler_refs(smp);
    CHECK("clReleaseSampler", clReleaseSampler(smp));
    r2 = sampler_refs(smp);
    expect_true("sampler refcount +1 after retain", r1 == r0 + 1);
    expect_true("sampler refcount restored after release", r2 == r0);

    CHECK("clReleaseSampler", clReleaseSampler(smp));
    CHECK("clReleaseMemObject", clReleaseMemObject(buf));
    CHECK("clReleaseKernel(alpha)", clReleaseKernel(ka));
    CHECK("clReleaseKernel(beta)", clReleaseKernel(kb));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));

    /* A root device is not reference counted: its retains and releases do
     * nothing, however many, and it stays usable. */
    CHECK("clRetainDevice(root)", clRetainDevice(dev));
    for (int i = 0; i < 3; ++i) CHECK("clReleaseDevice(root)", clReleaseDevice(dev));
    cl_device_type type = 0;
    CHECK("clGetDeviceInfo(root, after releases)",
          clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof(type), &type, NULL));
    cl_context again = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    CHECK("clCreateContext(root, after releases)", err);
    CHECK("clReleaseContext(again)", clReleaseContext(again));
    if (fails) {
        printf("FAIL: %u checks\n", fails);
        return 1;
    }
    printf("OK\n");
    return 0;
}
