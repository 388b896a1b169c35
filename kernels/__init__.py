"""JIT kernels of mmcore: pure functions over state arrays (installed as ``mmcore.kernels``).

Nothing here imports the orchestration layer or does I/O. Arrays in, arrays out, an integer status
back. One module per mechanism, named after the Linux file that does the same job.
"""
