# A small pyopencl program (Debian's python3-pyopencl): context, queue,
# buffers, a kernel, pyopencl.array arithmetic and reductions. Its output is
# compared natively and through hira (tests/opencl_e2e_test.cpp).
import numpy as np
import pyopencl as cl
import pyopencl.array as cla

ctx = cl.create_some_context(interactive=False)
queue = cl.CommandQueue(ctx)
print("platform version:", ctx.devices[0].platform.version.split()[0:2])
a = np.arange(1000, dtype=np.float32)
b = (np.arange(1000, dtype=np.float32) * 3) % 17
a_g = cla.to_device(queue, a)
b_g = cla.to_device(queue, b)
print("sum:", float(cla.sum(a_g + b_g).get()))
print("dot:", float(cla.dot(a_g, b_g).get()))
print("max:", float(cla.max(a_g * 2 - b_g).get()))
prg = cl.Program(ctx, """
__kernel void axpy(__global const float *x, __global float *y, float a) {
  int i = get_global_id(0);
  y[i] = a * x[i] + y[i];
}""").build()
y = b.copy()
y_g = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=y)
prg.axpy(queue, a.shape, None, a_g.data, y_g, np.float32(0.5))
cl.enqueue_copy(queue, y, y_g)
print("axpy checksum:", float(y.sum()), bool(np.allclose(y, 0.5 * a + b)))
e = cl.enqueue_marker(queue)
e.wait()
print("marker status:", e.command_execution_status)
print("sorted head:", cla.to_device(queue, b[:20]).get().tolist()[:5])
