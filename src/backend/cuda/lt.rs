//! cuBLASLt products with an epilogue (`driver::Epilogue`): the bias added,
//! or GELU applied to the product with its input kept for the backward, or
//! GELU's derivative applied to a gradient product, in f32 before c is
//! rounded — one pass over c, where cublasGemmEx and a separate kernel make
//! two or three. Column-major, as `driver::GemmEx`. The algorithm for each
//! shape, epilogue and alignment is asked of cuBLASLt's heuristic once and
//! kept; the descriptors (host objects, microseconds to make) are made per
//! call.
//!
//! Written against the cuBLASLt documentation and checked only through the
//! emulator's equivalent so far: not yet run on a GPU (the bias epilogue
//! since session 13, the GELU ones since session 19); they are the
//! `gemm_bias=epilogue` and `gemm_gelu=epilogue` tuning alternatives until a
//! GPU run has tested them.

use super::driver::{Epilogue, GemmEx};
use crate::tensor::DType;
use crate::{Error, Result};
use cudarc::cublaslt::result as lt;
use cudarc::cublaslt::sys;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

/// The workspace cuBLASLt's guide recommends for Hopper (32 MiB).
pub const WORKSPACE_BYTES: usize = 32 << 20;

pub struct Lt {
    handle: sys::cublasLtHandle_t,
    /// Device memory of WORKSPACE_BYTES, owned by the caller (`Nvidia`).
    pub workspace: u64,
    algos: Mutex<HashMap<Shape, sys::cublasLtMatmulAlgo_t>>,
}

// SAFETY: a cuBLASLt handle may be used from any thread (the caller binds the
// context first); the algorithm cache is behind a mutex.
unsafe impl Send for Lt {}
unsafe impl Sync for Lt {}

/// What the heuristic's choice depends on: transposes, sizes, leading
/// dimensions, which operands are bf16, the operands' address alignments,
/// and the epilogue with its vectors' alignments and aux's leading dimension.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    trans: (bool, bool),
    mnk: (usize, usize, usize),
    ld: (usize, usize, usize),
    bf16: (bool, bool, bool),
    align: (u32, u32, u32),
    epilogue: (u32, u32, u32, usize),
}

/// The epilogue's cuBLASLt code, its bias and aux addresses (0: none) and aux's leading dimension.
fn epilogue_parts(e: Epilogue) -> (sys::cublasLtEpilogue_t, u64, u64, usize) {
    use sys::cublasLtEpilogue_t as E;
    match e {
        Epilogue::None => (E::CUBLASLT_EPILOGUE_DEFAULT, 0, 0, 0),
        Epilogue::Bias { bias } => (E::CUBLASLT_EPILOGUE_BIAS, bias, 0, 0),
        Epilogue::GeluAux { bias: 0, aux, ld } => (E::CUBLASLT_EPILOGUE_GELU_AUX, 0, aux, ld),
        Epilogue::GeluAux { bias, aux, ld } => (E::CUBLASLT_EPILOGUE_GELU_AUX_BIAS, bias, aux, ld),
        Epilogue::DGelu { aux, ld } => (E::CUBLASLT_EPILOGUE_DGELU, 0, aux, ld),
    }
}

fn err(what: &str, e: lt::CublasError) -> Error {
    Error::Device(format!("{what}: {e:?}"))
}

fn data_type(d: DType) -> sys::cudaDataType {
    if d == DType::BF16 {
        sys::cudaDataType::CUDA_R_16BF
    } else {
        sys::cudaDataType::CUDA_R_32F
    }
}

/// The largest power of two up to 256 that divides `ptr` (cuBLASLt's
/// heuristic assumes 256-byte operands unless told otherwise).
fn alignment(ptr: u64) -> u32 {
    1 << ptr.trailing_zeros().min(8)
}

struct Desc(sys::cublasLtMatmulDesc_t);
impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created by create_matmul_desc, destroyed once.
        let _ = unsafe { lt::destroy_matmul_desc(self.0) };
    }
}
impl Desc {
    fn set<T>(&self, attr: sys::cublasLtMatmulDescAttributes_t, value: &T) -> Result<()> {
        // SAFETY: `value` is the attribute's documented type, read for its size.
        unsafe { lt::set_matmul_desc_attribute(self.0, attr, value as *const T as *const c_void, size_of::<T>()) }
            .map_err(|e| err(&format!("cublasLtMatmulDescSetAttribute {attr:?}"), e))
    }
}

struct Layout(sys::cublasLtMatrixLayout_t);
impl Drop for Layout {
    fn drop(&mut self) {
        // SAFETY: created by create_matrix_layout, destroyed once.
        let _ = unsafe { lt::destroy_matrix_layout(self.0) };
    }
}
impl Layout {
    /// A stored column-major matrix: `rows` × `cols`, columns `ld` apart.
    fn new(dtype: DType, rows: usize, cols: usize, ld: usize) -> Result<Self> {
        lt::create_matrix_layout(data_type(dtype), rows as u64, cols as u64, ld as i64).map(Layout).map_err(|e| err("cublasLtMatrixLayoutCreate", e))
    }
}

struct Pref(sys::cublasLtMatmulPreference_t);
impl Drop for Pref {
    fn drop(&mut self) {
        // SAFETY: created by create_matmul_pref, destroyed once.
        let _ = unsafe { lt::destroy_matmul_pref(self.0) };
    }
}
impl Pref {
    fn set<T>(&self, attr: sys::cublasLtMatmulPreferenceAttributes_t, value: &T) -> Result<()> {
        // SAFETY: as Desc::set.
        unsafe { lt::set_matmul_pref_attribute(self.0, attr, value as *const T as *const c_void, size_of::<T>()) }
            .map_err(|e| err(&format!("cublasLtMatmulPreferenceSetAttribute {attr:?}"), e))
    }
}

impl Lt {
    /// A cuBLASLt handle using `workspace` (WORKSPACE_BYTES of device memory).
    pub fn new(workspace: u64) -> Result<Self> {
        // SAFETY: probing only opens and closes the shared library.
        if !unsafe { sys::is_culib_present() } {
            return Err(Error::Device(
                "libcublasLt.so was not found (the gemm_bias and gemm_gelu epilogues need it): put the folder of libcublas.so, which holds it too, on LD_LIBRARY_PATH".into(),
            ));
        }
        let handle = lt::create_handle().map_err(|e| err("cublasLtCreate", e))?;
        Ok(Lt { handle, workspace, algos: Mutex::new(HashMap::new()) })
    }

    /// `g` with its epilogue, queued on the legacy default stream.
    pub fn matmul(&self, g: &GemmEx) -> Result<()> {
        use sys::cublasLtMatmulDescAttributes_t as D;
        let desc = lt::create_matmul_desc(sys::cublasComputeType_t::CUBLAS_COMPUTE_32F, sys::cudaDataType::CUDA_R_32F).map(Desc).map_err(|e| err("cublasLtMatmulDescCreate", e))?;
        // cublasOperation_t: N = 0, T = 1 (int32); the epilogue is a uint32;
        // bias and aux are device pointers; aux's leading dimension an int64.
        desc.set(D::CUBLASLT_MATMUL_DESC_TRANSA, &(g.trans_a as i32))?;
        desc.set(D::CUBLASLT_MATMUL_DESC_TRANSB, &(g.trans_b as i32))?;
        let (epilogue, bias, aux, aux_ld) = epilogue_parts(g.epilogue);
        desc.set(D::CUBLASLT_MATMUL_DESC_EPILOGUE, &(epilogue as u32))?;
        if bias != 0 {
            desc.set(D::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias)?;
        }
        if aux != 0 {
            // aux's type is left at its default, c's.
            desc.set(D::CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux)?;
            desc.set(D::CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &(aux_ld as i64))?;
        }
        // Layouts describe the matrices as stored, before the transposes.
        let (a_rows, a_cols) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
        let (b_rows, b_cols) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
        let a = Layout::new(g.a_type, a_rows, a_cols, g.lda)?;
        let b = Layout::new(g.b_type, b_rows, b_cols, g.ldb)?;
        let c = Layout::new(g.c_type, g.m, g.n, g.ldc)?;
        let algo = self.algo(g, &desc, &a, &b, &c)?;
        // SAFETY: the caller checked that the addresses cover the shapes (as
        // for cublasGemmEx), that a bias holds m values of c's type and an aux
        // matrix m × n at its leading dimension; c is both the input C and the
        // output D (same layout); alpha and beta are host f32 scalars (scale
        // type f32).
        unsafe {
            lt::matmul(
                self.handle,
                desc.0,
                &g.alpha as *const f32 as *const c_void,
                &g.beta as *const f32 as *const c_void,
                g.a as *const c_void,
                a.0,
                g.b as *const c_void,
                b.0,
                g.c as *const c_void,
                c.0,
                g.c as *mut c_void,
                c.0,
                &algo,
                self.workspace as *mut c_void,
                WORKSPACE_BYTES,
                std::ptr::null_mut(),
            )
        }
        .map_err(|e| err(&format!("cublasLtMatmul {g:?}"), e))
    }

    /// The heuristic's best algorithm for this shape (asked once per shape).
    fn algo(&self, g: &GemmEx, desc: &Desc, a: &Layout, b: &Layout, c: &Layout) -> Result<sys::cublasLtMatmulAlgo_t> {
        use sys::cublasLtMatmulPreferenceAttributes_t as P;
        let bf16 = |d: DType| d == DType::BF16;
        let key = Shape {
            trans: (g.trans_a, g.trans_b),
            mnk: (g.m, g.n, g.k),
            ld: (g.lda, g.ldb, g.ldc),
            bf16: (bf16(g.a_type), bf16(g.b_type), bf16(g.c_type)),
            align: (alignment(g.a), alignment(g.b), alignment(g.c)),
            epilogue: {
                let (code, bias, aux, ld) = epilogue_parts(g.epilogue);
                (code as u32, alignment(bias), alignment(aux), ld)
            },
        };
        if let Some(&algo) = self.algos.lock().unwrap().get(&key) {
            return Ok(algo);
        }
        let pref = lt::create_matmul_pref().map(Pref).map_err(|e| err("cublasLtMatmulPreferenceCreate", e))?;
        pref.set(P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &(WORKSPACE_BYTES as u64))?;
        pref.set(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.align.0)?;
        pref.set(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.align.1)?;
        pref.set(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.align.2)?;
        pref.set(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.align.2)?;
        // SAFETY: every descriptor is live; the result is copied out.
        let found = unsafe { lt::get_matmul_algo_heuristic(self.handle, desc.0, a.0, b.0, c.0, c.0, pref.0) }
            .map_err(|e| err(&format!("cublasLtMatmulAlgoGetHeuristic (no algorithm for {g:?})"), e))?;
        self.algos.lock().unwrap().insert(key, found.algo);
        Ok(found.algo)
    }
}

impl Drop for Lt {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once; the workspace is the owner's to free.
        let _ = unsafe { lt::destroy_handle(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    use super::alignment;

    #[test]
    fn alignment_is_the_largest_power_of_two_dividing_the_address_up_to_256() {
        assert_eq!([alignment(0x1000), alignment(0x1010), alignment(0x1002), alignment(0x1001), alignment(0x1180)], [256, 16, 2, 1, 128]);
    }
}
