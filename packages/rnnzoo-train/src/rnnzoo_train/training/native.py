"""Fused C element-wise steps for the training kernels, compiled on first use (float32).

The eager kernels (:mod:`.kernels`) spend about half their time in 6-12 small torch
operations per time step, each a separate pass over memory. ``native.c`` does each step's
element-wise work in one vectorised pass. Where the compiler targets AVX-512 the LSTM's
steps and the GRU's and UGRNN's forward steps are explicit 16-lane code whose sigmoid and
tanh use no division (reciprocal estimate + Newton step + residual correction), and the
LSTM's forward streams its activated gates to the stored rows with non-temporal stores
(:class:`NativeLSTMKernel`). Where torch's BLAS is MKL, a chunk's whole forward and
backward time loops run in C too (:func:`sequence_drivers`), calling MKL's ``sgemm_``
from torch's own library; otherwise the GEMMs are ``torch.bmm`` calls of a per-step
Python loop. The vanilla RNN's native kernel has C steps for ``act`` and ``act'`` only
and gains from the time loops in C. It is plain C
without Python or torch headers, so compiling it takes well under a second; the shared
library is cached per source, compiler, flags and CPU (it is built with ``-march=native``)
in ``pooch.os_cache("rnnzoo")/kernels`` (override: ``RNNZOO_KERNEL_CACHE``) and loaded with
:mod:`ctypes`.

Which kernels run is chosen by :func:`resolve_backend`, from the ``backend`` argument of
:func:`~rnnzoo_train.training.selection.make_kernel` or the environment variable
``RNNZOO_KERNELS``:

- ``auto`` (default): native for float32 when a C compiler is found and the build works,
  eager otherwise (float64 is always eager);
- ``eager``: torch operations only;
- ``native``: native, and an error saying why if it cannot be built;
- ``autograd``: the cell's own step differentiated by autograd
  (:mod:`.device_kernel`), what a GPU (``train_population(..., device="cuda")``) always
  uses; on the CPU it is the slow reference the other two are tested against.

The native steps compute the same function as the eager ones; they differ in rounding
(their sigmoid is within 1.5e-7 relative error like torch's, their tanh within 4.1e-7, or
2.6e-7 in the AVX-512 version, against torch's 6e-8), so a network trained with one
backend differs from the other at the level of float32 rounding. On one machine the
choice is stable, so training stays bitwise repeatable.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import torch

from .kernels import GRUKernel, LSTMKernel, UGRNNKernel, VanillaKernel

log = logging.getLogger(__name__)

#: environment variable that selects the kernels: auto, eager or native
BACKEND_ENV = "RNNZOO_KERNELS"
BACKENDS = ("auto", "eager", "native", "autograd")
CACHE_ENV = "RNNZOO_KERNEL_CACHE"
#: "0" keeps the kernels' time loops in Python (per-step torch GEMMs), e.g. for A/B timing
SEQUENCE_ENV = "RNNZOO_SEQUENCE_DRIVERS"

_BASE_FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC", "-fno-math-errno", "-fno-trapping-math"]


class NativeUnavailable(RuntimeError):
    """The native kernels were requested but cannot be built or loaded."""


def _source() -> bytes:
    return resources.files(__package__).joinpath("native.c").read_bytes()


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name:
            path = shutil.which(name.split()[0])
            if path:
                return path
    return None


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the machine and its CPU feature flags."""
    sig = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features", "model name")):
                    sig += line
    except OSError:
        sig += platform.processor()
    return sig


def _arch_flags() -> list[list[str]]:
    """Flag sets to try, best first (the portable one last)."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        return [["-march=native", "-mprefer-vector-width=512"], ["-march=native"], []]
    return [["-march=native"], ["-mcpu=native"], []]


def _cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    try:
        import pooch

        return Path(pooch.os_cache("rnnzoo")) / "kernels"
    except Exception:  # pragma: no cover - pooch is a dependency
        return Path(tempfile.gettempdir()) / "rnnzoo-kernels"


def _compile(compiler: str, source: Path, target: Path) -> str | None:
    """Build ``target``; returns None on success, else why it failed (one line)."""
    last = "no flag set worked"
    for arch in _arch_flags():
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        cmd = [compiler, *_BASE_FLAGS, *arch, str(source), "-o", str(tmp)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{compiler} could not run: {exc}"
        if done.returncode == 0:
            os.replace(tmp, target)  # atomic: concurrent builders agree
            return None
        tmp.unlink(missing_ok=True)
        lines = (done.stderr or done.stdout).strip().splitlines()
        last = f"{compiler} failed: {lines[-1] if lines else done.returncode}"
    return last


#: the arguments every backward sequence driver ends with (after its cell's state buffers
#: and gh, [carry or gc,] g_stride): D, d_stride; dY, dy_stride, dy_step; Wf, wf_stride;
#: Z, z_stride, z_step; dWfT, dw_stride; relu
_BACKWARD_TAIL = "pi" + "pii" + "pi" + "pii" + "pi" + "r"

_SIGNATURES = {
    # name: argument types after (n_net, nb): p pointer, i int64, r the int relu flag
    "lstm_forward": "pipippipir",
    "lstm_backward": "pippippipir",
    "gru_forward": "piippir",
    "gru_backward": "piipippipir",
    "ugrnn_forward": "pippir",
    "ugrnn_backward": "pipippipir",
    "gemm_check": "iiippp",
    "vanilla_forward": "pipir",
    "vanilla_backward": "pipipir",
    # the time loops in C: sizes, weights, Z, the cell's buffers, then (backward) the tail
    "lstm_forward_sequence": "iiiiii" + "pi" + "pii" + "pi" + "pii" * 4 + "r",
    "lstm_backward_sequence": "iiiiiii" + "pii" * 2 + "ppi" + _BACKWARD_TAIL,
    "gru_forward_sequence": "iiiiiii" + "pi" + "pii" + "pii" * 3 + "r",
    "gru_backward_sequence": "iiiiiiii" + "pii" * 2 + "ppi" + _BACKWARD_TAIL,
    "ugrnn_forward_sequence": "iiiiii" + "pi" + "pii" + "pii" * 3 + "r",
    "ugrnn_backward_sequence": "iiiiiii" + "pii" * 2 + "ppi" + _BACKWARD_TAIL,
    "vanilla_forward_sequence": "iiiiii" + "pi" + "pii" + "pi" + "pii" * 2 + "r",
    "vanilla_backward_sequence": "iiiiiii" + "pii" + "pi" + _BACKWARD_TAIL,
}
_CTYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "r": ctypes.c_int}


#: ``copy_blocks(n_net, count, ...)``: argument types after the first two
COPY_SIGNATURE = "pipi"
#: element-wise functions over arrays (``n, out, x``), for the accuracy tests
VECTOR_FUNCTIONS = ("vector_sigmoid", "vector_tanh")


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    for name, sig in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, *(_CTYPES[c] for c in sig)]
        fn.restype = None
    lib.set_sgemm.argtypes = [ctypes.c_void_p]
    lib.set_sgemm.restype = ctypes.c_int
    for name in VECTOR_FUNCTIONS:
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p]
        fn.restype = None
    lib.copy_blocks.argtypes = [ctypes.c_int, ctypes.c_int64, *(_CTYPES[c] for c in COPY_SIGNATURE)]
    lib.copy_blocks.restype = None
    return lib


def apply(name: str, x: torch.Tensor) -> torch.Tensor:
    """``name`` (``"sigmoid"`` or ``"tanh"``) of the native steps over a float32 tensor."""
    x = x.to(torch.float32).contiguous()
    out = torch.empty_like(x)
    getattr(_lib(), f"vector_{name}")(x.numel(), out.data_ptr(), x.data_ptr())
    return out


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ctypes.CDLL | None, str]:
    """Build (once per machine) and load the library; ``(library or None, status)``."""
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler found (set CC, or install gcc or clang)"
    src = _source()
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{compiler} could not run: {exc}"
    key = hashlib.sha256()
    for part in (src, compiler, version, " ".join(_BASE_FLAGS), _cpu_signature()):
        key.update(part if isinstance(part, bytes) else part.encode())
    name = f"rnnzoo_kernels_{key.hexdigest()[:16]}{_suffix()}"
    last = "no writable kernel cache directory"
    for directory in (_cache_dir(), Path(tempfile.gettempdir()) / "rnnzoo-kernels"):
        target = directory / name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                source = directory / f"{name}.c"
                source.write_bytes(src)
                why = _compile(compiler, source, target)
                if why is not None:
                    return None, why
            lib = _declare(ctypes.CDLL(str(target)))
            return lib, f"native ({target}; {_attach_blas(lib)})"
        except OSError as exc:
            log.debug("kernel cache %s unusable: %s", directory, exc)
            last = f"cannot write or load {target}: {exc}"
    return None, last


def _blas_sgemm() -> tuple[int | None, str]:
    """Address of the Fortran ``sgemm_`` (LP64) of the BLAS torch uses, and where it is."""
    if os.environ.get(SEQUENCE_ENV, "1").strip() == "0":
        return None, f"{SEQUENCE_ENV}=0"
    lib_dir = Path(torch.__file__).parent / "lib"
    for path in sorted(lib_dir.glob(f"libtorch_cpu{_suffix()}*")):
        try:
            blas = ctypes.CDLL(str(path))
            # MKL, linked into torch's x86-64 wheels: sgemm_ is its LP64 (32-bit int) entry
            if hasattr(blas, "mkl_blas__sgemm") and hasattr(blas, "sgemm_"):
                return ctypes.cast(blas.sgemm_, ctypes.c_void_p).value, f"MKL in {path.name}"
        except OSError:
            continue
    return None, "no MKL sgemm_ in torch's libraries"


def _attach_blas(lib: ctypes.CDLL) -> str:
    """Give the library torch's sgemm_ for the sequence drivers if it computes correctly.

    Sets ``lib.rnnzoo_sequence`` (bool) and returns a description for :func:`status`.
    """
    lib.rnnzoo_sequence = False
    address, where = _blas_sgemm()
    if address is None:
        lib.set_sgemm(None)
        return f"per-step GEMMs through torch ({where})"
    lib.set_sgemm(address)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=gen), torch.randn(7, 3, generator=gen)
    c = torch.empty(5, 3)
    lib.gemm_check(1, 0, 5, 3, 7, a.data_ptr(), b.data_ptr(), c.data_ptr())
    if not torch.allclose(c, a @ b, rtol=1e-5, atol=1e-5):
        lib.set_sgemm(None)
        return f"per-step GEMMs through torch (sgemm_ from {where} failed a check)"
    lib.rnnzoo_sequence = True
    return f"sequence drivers with sgemm_ from {where}"


def sequence_drivers() -> bool:
    """Whether the native kernels' time loops run in C (``<arch>_forward_sequence``)."""
    lib = library()
    return lib is not None and bool(getattr(lib, "rnnzoo_sequence", False))


def _suffix() -> str:
    return {"Darwin": ".dylib", "Windows": ".dll"}.get(platform.system(), ".so")


def library() -> ctypes.CDLL | None:
    """The loaded native library, or None if it cannot be built here."""
    return _load()[0]


def status() -> str:
    """One line: where the native library is, or why it is unavailable."""
    return _load()[1]


def requested_backend(backend: str | None) -> str:
    """The backend asked for, one of :data:`BACKENDS` (nothing is compiled).

    None asks for ``$RNNZOO_KERNELS`` (default ``"auto"``).
    """
    requested = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if requested not in BACKENDS:
        raise ValueError(
            f"unknown kernel backend {requested!r} (from {'backend' if backend else BACKEND_ENV}); "
            f"choose one of {', '.join(BACKENDS)}"
        )
    return requested


def resolve_backend(backend: str | None, dtype: torch.dtype) -> str:
    """``"native"``, ``"eager"`` or ``"autograd"`` for a requested backend.

    None asks for ``$RNNZOO_KERNELS`` (default ``"auto"``).
    """
    requested = requested_backend(backend)
    if requested in ("eager", "autograd"):
        return requested
    if dtype != torch.float32:
        if requested == "native":
            raise NativeUnavailable(
                f"native kernels are float32 only, got {dtype}; use backend='eager'"
            )
        return "eager"
    if library() is None:
        if requested == "native":
            raise NativeUnavailable(f"native kernels unavailable: {status()}")
        log.info("rnnzoo-train: eager training kernels (%s)", status())
        return "eager"
    return "native"


# -- the native kernel classes --------------------------------------------------------------
def _pointers(tensors) -> list[int]:
    return [t.data_ptr() for t in tensors]


class _Native:
    """Mixin: per-step data pointers and readout rows moved by C; the time loops in C.

    The pointers of a chunk are computed once with its views; a torch copy of the small
    strided readout blocks costs more than the copy itself, so C moves them. Where
    :func:`sequence_drivers` is true a chunk's whole forward and backward time loops run in
    C (``<arch>_forward_sequence``, ``<arch>_backward_sequence`` in ``native.c``); otherwise
    :meth:`_forward_steps` and :meth:`_backward_steps` make the same calls from Python, one
    step at a time (bitwise the same numbers: ``test_training_kernels.py``).
    """

    backend = "native"
    #: whether part of dL/dh is carried directly through a gated update (``h' = c + g (h -
    #: c)``: GRU, UGRNN), in the scratch ``t1``
    carries = True

    def _chunk_views(self, c0: int, c1: int) -> dict:
        v = super()._chunk_views(c0, c1)
        if self.stores_gates:
            v["pA"] = _pointers(v["A"])
            v["pA_out"] = _pointers(v["A_out"])
            v["a_stride"] = v["A"][0].stride(0)
        v["pH"] = _pointers(v["H"])
        v["pY"] = _pointers(v["Y"])
        v["pdY"] = _pointers(v["dY"])
        v["h_stride"] = v["H"][0].stride(0)
        v["y_stride"] = v["Y"][0].stride(0)
        v["n"] = c1 - c0
        v["n_out"] = self.K_out * self.B
        v["relu"] = int(self.activation == "relu")
        return v

    def _step(self, pointers: list[int]) -> int:
        """Floats between consecutive time steps of a per-step pointer list."""
        return (pointers[1] - pointers[0]) // 4 if len(pointers) > 1 else 0

    def _backward_tail_args(self, v: dict) -> tuple:
        """The arguments every backward sequence driver ends with (``_BACKWARD_TAIL``)."""
        D, Wf, Z, dWfT = v["D"], v["WbT"], v["Z"], v["dWfT"]
        return (
            D.data_ptr(), D.stride(0),
            v["pdY"][0], v["y_stride"], self._step(v["pdY"]),
            Wf.data_ptr(), Wf.stride(0),
            Z[0].data_ptr(), Z[0].stride(0), self._step(_pointers(Z[:2])),
            dWfT.data_ptr(), dWfT.stride(0),
            v["relu"],
        )  # fmt: skip

    def _forward_chunk(self, v: dict) -> None:
        if sequence_drivers():
            self._forward_sequence(v)
        else:
            self._forward_steps(v)

    def _backward_chunk(self, v: dict) -> None:
        if sequence_drivers():
            self._backward_sequence(v)
        else:
            self._backward_steps(v)

    def _forward_steps(self, v: dict) -> None:
        copy = _lib().copy_blocks
        n, n_out, y_stride, a_stride = v["n"], v["n_out"], v["y_stride"], v["a_stride"]
        Z, A, pY, pA_out, WfT = v["Z"], v["A"], v["pY"], v["pA_out"], v["WfT"]
        for s in range(self.T):
            torch.bmm(WfT, Z[s], out=A[s])
            if s:
                copy(n, n_out, pY[s - 1], y_stride, pA_out[s], a_stride)
            self._activate(v, s)
        S_out = v["S_out"]
        torch.bmm(v["WfT_out"], Z[self.T], out=S_out)
        v["Y"][self.T - 1].copy_(S_out)

    def _backward_steps(self, v: dict) -> None:
        raise NotImplementedError

    def _step_tail(self, v: dict, s: int) -> None:
        D = v["D"]
        out = D[:, self.out_rows]
        _lib().copy_blocks(
            v["n"], v["n_out"], out.data_ptr(), D.stride(0), v["pdY"][s - 2] if s > 1 else None,
            v["y_stride"],
        )  # fmt: skip
        v["dWfT"].baddbmm_(D, v["Zt"][s - 1])
        if s > 1:
            torch.bmm(v["WbT"], v["D_rec"], out=v["gh"])

    # -- the time loops in C (GRU, UGRNN, vanilla; the LSTM has its own) -----------------
    def _arch_args(self) -> tuple[int, ...]:
        """The drivers' architecture arguments after ``out_offset`` (the GRU's n offset)."""
        return ()

    def _gemm_target(self, v: dict) -> tuple[int, ...]:
        """Where a forward step's GEMM writes: the stored gates (pointer, stride, step)."""
        return v["pA"][0], v["a_stride"], self._step(v["pA"])

    def _forward_sequence(self, v: dict) -> None:
        """The forward's time loop in C (:func:`sequence_drivers`)."""
        B, K, W, T = self.B, self.K, self.W, self.T
        Z = v["Z"]
        getattr(_lib(), f"{self.arch}_forward_sequence")(
            v["n"], self.N * B, T, W, K, B, v["n_out"], self.out_rows.start * B,
            *self._arch_args(),
            v["WfT"].data_ptr(), v["WfT"].stride(0),
            Z[0].data_ptr(), Z[0].stride(0), self._step(_pointers(Z[:2])),
            *self._gemm_target(v),
            v["pH"][0], v["h_stride"], self._step(v["pH"]),
            v["pY"][0], v["y_stride"], self._step(v["pY"]),
            v["relu"],
        )  # fmt: skip
        S_out = v["S_out"]
        torch.bmm(v["WfT_out"], Z[T], out=S_out)
        v["Y"][T - 1].copy_(S_out)

    def _backward_sequence(self, v: dict) -> None:
        """The backward's time loop in C (:func:`sequence_drivers`)."""
        B, K, W, T = self.B, self.K, self.W, self.T
        gh = v["gh"]
        stored = (v["pA"][0], v["a_stride"], self._step(v["pA"])) if self.stores_gates else ()
        carry = ()
        if self.carries:
            v["t1"].zero_()
            carry = (v["t1"].data_ptr(),)
        getattr(_lib(), f"{self.arch}_backward_sequence")(
            v["n"], self.N * B, T, W, K, B, self.recurrent_rows, v["n_out"],
            self.out_rows.start * B, *self._arch_args(),
            *stored,
            v["pH"][0], v["h_stride"], self._step(v["pH"]),
            gh.data_ptr(), *carry, gh.stride(0),
            *self._backward_tail_args(v),
        )  # fmt: skip


class NativeLSTMKernel(_Native, LSTMKernel):
    """:class:`~.kernels.LSTMKernel` with fused C element-wise steps.

    The forward GEMM of a step writes into the cache-resident scratch ``S``; the C step
    reads the pre-activations there and streams the activated gates to the stored rows
    ``A`` (non-temporal stores where the CPU has AVX-512), which only BPTT reads. The
    readout rows therefore come from ``S``, and the rows ``A[:, t, out]`` are not written.
    """

    #: measured at 64 units, P = 16: 4 networks per chunk 7.5 ms, 8 networks 8.1 ms
    default_chunk = 4

    def _chunk_views(self, c0: int, c1: int) -> dict:
        v = super()._chunk_views(c0, c1)
        v["pC"] = _pointers(v["Cs"])
        v["c_stride"] = v["Cs"][0].stride(0)
        return v

    def _forward_chunk(self, v: dict) -> None:
        if sequence_drivers():
            return self._forward_sequence(v)
        lib, nb = _lib(), self.N * self.B
        n, n_out, y_stride, relu = v["n"], v["n_out"], v["y_stride"], v["relu"]
        Z, S, WfT, pA, pC, pH, pY = v["Z"], v["S"], v["WfT"], v["pA"], v["pC"], v["pH"], v["pY"]
        p_s, s_stride, p_s_out = S.data_ptr(), S.stride(0), v["S_out"].data_ptr()
        a_stride, c_stride, h_stride = v["a_stride"], v["c_stride"], v["h_stride"]
        for s in range(self.T):
            torch.bmm(WfT, Z[s], out=S)
            if s:
                lib.copy_blocks(n, n_out, pY[s - 1], y_stride, p_s_out, s_stride)
            lib.lstm_forward(n, nb, p_s, s_stride, pA[s], a_stride, pC[s], pC[s + 1], c_stride,
                             pH[s + 1], h_stride, relu)  # fmt: skip
        torch.bmm(v["WfT_out"], Z[self.T], out=v["S_out"])
        v["Y"][self.T - 1].copy_(v["S_out"])

    def _forward_sequence(self, v: dict) -> None:
        """The forward's time loop in C (:func:`sequence_drivers`)."""
        B, K, W, T = self.B, self.K, self.W, self.T
        Z, S = v["Z"], v["S"]
        _lib().lstm_forward_sequence(
            v["n"], self.N * B, T, W, K, B, v["n_out"], self.out_rows.start * B,
            v["WfT"].data_ptr(), v["WfT"].stride(0),
            Z[0].data_ptr(), Z[0].stride(0), self._step(_pointers(Z[:2])),
            S.data_ptr(), S.stride(0),
            v["pA"][0], v["a_stride"], self._step(v["pA"]),
            v["pC"][0], v["c_stride"], self._step(v["pC"]),
            v["pH"][0], v["h_stride"], self._step(v["pH"]),
            v["pY"][0], v["y_stride"], self._step(v["pY"]),
            v["relu"],
        )  # fmt: skip
        torch.bmm(v["WfT_out"], Z[T], out=v["S_out"])
        v["Y"][T - 1].copy_(v["S_out"])

    def _backward_sequence(self, v: dict) -> None:
        """The backward's time loop in C (:func:`sequence_drivers`)."""
        B, K, W, T = self.B, self.K, self.W, self.T
        gh, gc = v["gh"], v["gc"]
        gc.zero_()
        _lib().lstm_backward_sequence(
            v["n"], self.N * B, T, W, K, B, self.recurrent_rows, v["n_out"],
            self.out_rows.start * B,
            v["pA"][0], v["a_stride"], self._step(v["pA"]),
            v["pC"][0], v["c_stride"], self._step(v["pC"]),
            gh.data_ptr(), gc.data_ptr(), gh.stride(0),
            *self._backward_tail_args(v),
        )  # fmt: skip

    def _backward_chunk(self, v: dict) -> None:
        if sequence_drivers():
            return self._backward_sequence(v)
        # _step_tail inlined, everything it needs bound once (Python costs ~5% here), and
        # dL/dh_{s-1} computed before the weight-gradient GEMM (measured 2% faster)
        lib, nb = _lib(), self.N * self.B
        fn, copy, bmm = lib.lstm_backward, lib.copy_blocks, torch.bmm
        n, pA, pC, pdY, relu = v["n"], v["pA"], v["pC"], v["pdY"], v["relu"]
        a_stride, c_stride, y_stride, n_out = (
            v["a_stride"],
            v["c_stride"],
            v["y_stride"],
            v["n_out"],
        )
        gh, gc, D, D_rec, WbT, Zt = v["gh"], v["gc"], v["D"], v["D_rec"], v["WbT"], v["Zt"]
        accumulate = v["dWfT"].baddbmm_
        gc.zero_()
        p_gh, p_gc, p_d = gh.data_ptr(), gc.data_ptr(), D.data_ptr()
        p_d_out = v["D_out"].data_ptr()
        g_stride, d_stride = gh.stride(0), D.stride(0)
        for s in range(self.T, 0, -1):
            fn(n, nb, pA[s - 1], a_stride, pC[s], pC[s - 1], c_stride, p_gh, p_gc, g_stride,
               p_d, d_stride, relu)  # fmt: skip
            # [dA_s; dy_{s-1}]: the readout rows of D (zero for s = 1)
            copy(n, n_out, p_d_out, d_stride, pdY[s - 2] if s > 1 else None, y_stride)
            if s > 1:
                bmm(WbT, D_rec, out=gh)
            accumulate(D, Zt[s - 1])


class NativeGRUKernel(_Native, GRUKernel):
    """:class:`~.kernels.GRUKernel` with fused C element-wise steps and time loops."""

    #: measured at 64 units, P = 16 and 64, with the sequence drivers: chunks of 2 networks
    #: 0.90-1.0x the time of 4, 0.90-0.93x that of 8 (the per-step loop: indifferent)
    default_chunk = 2

    def _activate(self, v: dict, s: int) -> None:
        _lib().gru_forward(
            v["n"], self.N * self.B, v["pA"][s], v["a_stride"], self._n_offset(),
            v["pH"][s], v["pH"][s + 1], v["h_stride"], v["relu"],
        )  # fmt: skip

    def _n_offset(self) -> int:
        return self.rows[("x", 2)].start * self.B

    def _arch_args(self) -> tuple[int, ...]:
        return (self._n_offset(),)

    def _backward_steps(self, v: dict) -> None:
        fn, nb, off = _lib().gru_backward, self.N * self.B, self._n_offset()
        n, pA, pH, relu = v["n"], v["pA"], v["pH"], v["relu"]
        a_stride, h_stride = v["a_stride"], v["h_stride"]
        gh, carry, D = v["gh"], v["t1"], v["D"]
        carry.zero_()
        p_gh, p_c, p_d = gh.data_ptr(), carry.data_ptr(), D.data_ptr()
        g_stride, d_stride = gh.stride(0), D.stride(0)
        for s in range(self.T, 0, -1):
            fn(n, nb, pA[s - 1], a_stride, off, pH[s - 1], h_stride, p_gh, p_c, g_stride,
               p_d, d_stride, relu)  # fmt: skip
            self._step_tail(v, s)


class NativeUGRNNKernel(_Native, UGRNNKernel):
    """:class:`~.kernels.UGRNNKernel` with fused C element-wise steps and time loops."""

    #: measured at 64 units, P = 16 and 64, with the sequence drivers: chunks of 4 networks
    #: 0.95-0.99x the time of 8, the same as 2 (the per-step loop: indifferent)
    default_chunk = 4

    def _activate(self, v: dict, s: int) -> None:
        _lib().ugrnn_forward(
            v["n"], self.N * self.B, v["pA"][s], v["a_stride"], v["pH"][s], v["pH"][s + 1],
            v["h_stride"], v["relu"],
        )  # fmt: skip

    def _backward_steps(self, v: dict) -> None:
        fn, nb = _lib().ugrnn_backward, self.N * self.B
        n, pA, pH, relu = v["n"], v["pA"], v["pH"], v["relu"]
        a_stride, h_stride = v["a_stride"], v["h_stride"]
        gh, carry, D = v["gh"], v["t1"], v["D"]
        carry.zero_()
        p_gh, p_c, p_d = gh.data_ptr(), carry.data_ptr(), D.data_ptr()
        g_stride, d_stride = gh.stride(0), D.stride(0)
        for s in range(self.T, 0, -1):
            fn(n, nb, pA[s - 1], a_stride, pH[s - 1], h_stride, p_gh, p_c, g_stride, p_d,
               d_stride, relu)  # fmt: skip
            self._step_tail(v, s)


class NativeVanillaKernel(_Native, VanillaKernel):
    """:class:`~.kernels.VanillaKernel` with C steps (``act``, ``act'``) and time loops.

    Each step's element-wise work is one ``tanh``/``relu`` forward and one product
    backward, which fusion alone does not speed up; what the C time loops remove is the
    per-step Python and ``torch.bmm`` overhead (four calls per step and chunk backward,
    three forward).
    """

    carries = False

    def _gemm_target(self, v: dict) -> tuple[int, ...]:
        """The forward GEMM writes into the scratch ``S`` (pointer, per-network stride)."""
        return v["S"].data_ptr(), v["S"].stride(0)

    def _forward_steps(self, v: dict) -> None:
        lib, nb = _lib(), self.N * self.B
        fn, copy = lib.vanilla_forward, lib.copy_blocks
        n, n_out, y_stride, h_stride, relu = (
            v["n"], v["n_out"], v["y_stride"], v["h_stride"], v["relu"],
        )  # fmt: skip
        Z, S, WfT, pH, pY = v["Z"], v["S"], v["WfT"], v["pH"], v["pY"]
        p_s, s_stride, p_s_out = S.data_ptr(), S.stride(0), v["S_out"].data_ptr()
        for s in range(self.T):
            torch.bmm(WfT, Z[s], out=S)
            if s:
                copy(n, n_out, pY[s - 1], y_stride, p_s_out, s_stride)
            fn(n, nb, p_s, s_stride, pH[s + 1], h_stride, relu)
        S_out = v["S_out"]
        torch.bmm(v["WfT_out"], Z[self.T], out=S_out)
        v["Y"][self.T - 1].copy_(S_out)

    def _backward_steps(self, v: dict) -> None:
        fn, nb = _lib().vanilla_backward, self.N * self.B
        n, pH, relu, h_stride = v["n"], v["pH"], v["relu"], v["h_stride"]
        gh, D = v["gh"], v["D"]
        p_gh, p_d, g_stride, d_stride = gh.data_ptr(), D.data_ptr(), gh.stride(0), D.stride(0)
        for s in range(self.T, 0, -1):
            fn(n, nb, pH[s], h_stride, p_gh, g_stride, p_d, d_stride, relu)
            self._step_tail(v, s)


def _lib() -> ctypes.CDLL:
    lib = library()
    if lib is None:  # pragma: no cover - selection.make_kernel checks first
        raise NativeUnavailable(f"native kernels unavailable: {status()}")
    return lib
