//! Column builders and their export through the Arrow C data interface.
//!
//! A table is exported as one struct array (a record batch); the schema comes from the
//! Python side (`collector.columns.SCHEMAS`), so only `ArrowArray`s are produced here.
//! All buffers of a batch live in one `Batch` owned by the root array's private data; the
//! root's release callback frees them, children only mark themselves released.

use std::ffi::c_void;
use std::ptr;

/// `struct ArrowArray` of the Arrow C data interface.
#[repr(C)]
pub struct ArrowArray {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub n_buffers: i64,
    pub n_children: i64,
    pub buffers: *mut *const c_void,
    pub children: *mut *mut ArrowArray,
    pub dictionary: *mut ArrowArray,
    pub release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    pub private_data: *mut c_void,
}

impl ArrowArray {
    pub fn empty() -> Self {
        ArrowArray {
            length: 0,
            null_count: 0,
            offset: 0,
            n_buffers: 0,
            n_children: 0,
            buffers: ptr::null_mut(),
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: None,
            private_data: ptr::null_mut(),
        }
    }
}

/// A validity bitmap (exported only when the column has nulls).
#[derive(Default)]
pub struct Validity {
    bits: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Validity {
    fn reserve(&mut self, rows: usize) {
        self.bits.reserve(rows.div_ceil(8) + 1);
    }

    #[inline]
    fn push(&mut self, valid: bool) {
        if self.len % 8 == 0 {
            self.bits.push(0);
        }
        if valid {
            self.bits[self.len / 8] |= 1 << (self.len % 8);
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }
}

/// A UTF-8 column (`pa.string()`: int32 offsets).
pub struct StrCol {
    offsets: Vec<i32>,
    pub data: Vec<u8>,
    valid: Validity,
}

impl Default for StrCol {
    fn default() -> Self {
        StrCol { offsets: vec![0], data: Vec::new(), valid: Validity::default() }
    }
}

impl StrCol {
    /// Room for `rows` more values of `bytes` in all (growth by doubling copies a lot).
    pub fn reserve(&mut self, rows: usize, bytes: usize) {
        self.offsets.reserve(rows);
        self.data.reserve(bytes);
        self.valid.reserve(rows);
    }
    /// Close the value written into `data` since the last one (offset overflow is caught by
    /// the decoder's output budget, far below 2 GiB).
    #[inline]
    pub fn end(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.valid.push(true);
    }
    #[inline]
    pub fn push(&mut self, s: &[u8]) {
        self.data.extend_from_slice(s);
        self.end();
    }
    #[inline]
    pub fn null(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.valid.push(false);
    }
    #[inline]
    pub fn opt(&mut self, s: Option<&[u8]>) {
        match s {
            Some(s) => self.push(s),
            None => self.null(),
        }
    }
    /// `s` or NULL when empty (protobuf's "unset" string).
    #[inline]
    pub fn nonempty(&mut self, s: &[u8]) {
        if s.is_empty() {
            self.null()
        } else {
            self.push(s)
        }
    }
    #[inline]
    pub fn hex_or_null(&mut self, b: &[u8]) {
        if b.is_empty() {
            self.null()
        } else {
            crate::json::hex(&mut self.data, b);
            self.end();
        }
    }
}

/// A fixed-width column.
#[derive(Default)]
pub struct Prim<T> {
    values: Vec<T>,
    valid: Validity,
}

impl<T: Copy + Default> Prim<T> {
    pub fn reserve(&mut self, rows: usize) {
        self.values.reserve(rows);
        self.valid.reserve(rows);
    }
    #[inline]
    pub fn push(&mut self, v: T) {
        self.values.push(v);
        self.valid.push(true);
    }
    #[inline]
    pub fn opt(&mut self, v: Option<T>) {
        match v {
            Some(v) => self.push(v),
            None => {
                self.values.push(T::default());
                self.valid.push(false);
            }
        }
    }
}

/// A boolean column (bit-packed values).
#[derive(Default)]
pub struct BoolCol {
    bits: Vec<u8>,
    len: usize,
    valid: Validity,
}

impl BoolCol {
    #[inline]
    pub fn opt(&mut self, v: Option<bool>) {
        if self.len % 8 == 0 {
            self.bits.push(0);
        }
        if v == Some(true) {
            self.bits[self.len / 8] |= 1 << (self.len % 8);
        }
        self.len += 1;
        self.valid.push(v.is_some());
    }
}

/// A list column without nulls (`pa.list_(float64())`, `pa.list_(uint64())`).
pub struct ListCol<T> {
    offsets: Vec<i32>,
    pub values: Vec<T>,
}

impl<T> Default for ListCol<T> {
    fn default() -> Self {
        ListCol { offsets: vec![0], values: Vec::new() }
    }
}

impl<T: Copy> ListCol<T> {
    #[inline]
    pub fn push(&mut self, vs: &[T]) {
        self.values.extend_from_slice(vs);
        self.offsets.push(self.values.len() as i32);
    }
}

/// A finished column, type-erased for export.
pub enum Col {
    Str(StrCol),
    I32(Prim<i32>),
    U32(Prim<u32>),
    I64(Prim<i64>),
    U64(Prim<u64>),
    F64(Prim<f64>),
    Bool(BoolCol),
    ListF64(ListCol<f64>),
    ListU64(ListCol<u64>),
}

impl Col {
    /// Bytes held by the column's buffers (the decoder's output budget).
    pub fn nbytes(&self) -> usize {
        match self {
            Col::Str(c) => c.data.len() + c.offsets.len() * 4,
            Col::I32(c) => c.values.len() * 4,
            Col::U32(c) => c.values.len() * 4,
            Col::I64(c) => c.values.len() * 8,
            Col::U64(c) => c.values.len() * 8,
            Col::F64(c) => c.values.len() * 8,
            Col::Bool(c) => c.bits.len(),
            Col::ListF64(c) => c.values.len() * 8 + c.offsets.len() * 4,
            Col::ListU64(c) => c.values.len() * 8 + c.offsets.len() * 4,
        }
    }
}

/// Everything one exported batch owns.
struct Batch {
    _cols: Vec<Col>,
    children: Vec<ArrowArray>,
    child_ptrs: Vec<*mut ArrowArray>,
    grandchildren: Vec<ArrowArray>,
    grandchild_ptrs: Vec<*mut ArrowArray>,
    buffers: Vec<Vec<*const c_void>>,
    root_buffers: Vec<*const c_void>,
}

unsafe extern "C" fn release_child(arr: *mut ArrowArray) {
    if !arr.is_null() {
        (*arr).release = None;
    }
}

unsafe extern "C" fn release_root(arr: *mut ArrowArray) {
    if arr.is_null() {
        return;
    }
    let batch = (*arr).private_data as *mut Batch;
    if !batch.is_null() {
        for child in (*batch).children.iter_mut() {
            if let Some(release) = child.release {
                release(child);
            }
        }
        drop(Box::from_raw(batch));
    }
    (*arr).private_data = ptr::null_mut();
    (*arr).release = None;
}

fn validity_ptr(v: &Validity) -> (*const c_void, i64) {
    if v.nulls == 0 {
        (ptr::null(), 0)
    } else {
        (v.bits.as_ptr() as *const c_void, v.nulls as i64)
    }
}

fn leaf(length: usize, null_count: i64, n_buffers: usize, buffers: &mut [*const c_void]) -> ArrowArray {
    ArrowArray {
        length: length as i64,
        null_count,
        offset: 0,
        n_buffers: n_buffers as i64,
        n_children: 0,
        buffers: buffers.as_mut_ptr(),
        children: ptr::null_mut(),
        dictionary: ptr::null_mut(),
        release: Some(release_child),
        private_data: ptr::null_mut(),
    }
}

/// Fill `out` with a struct array of `rows` rows over `cols` (schema order).
///
/// The buffers stay where the builders put them (no copy); they are freed when the
/// consumer calls the root's release callback.
pub fn export(cols: Vec<Col>, rows: usize, out: &mut ArrowArray) {
    let n = cols.len();
    let mut batch = Box::new(Batch {
        _cols: cols,
        children: Vec::with_capacity(n),
        child_ptrs: Vec::with_capacity(n),
        grandchildren: Vec::with_capacity(n),
        grandchild_ptrs: Vec::with_capacity(n),
        buffers: Vec::with_capacity(2 * n),
        root_buffers: vec![ptr::null()],
    });
    // Buffer pointer arrays first (their heap storage never moves once pushed).
    let mut nulls = Vec::with_capacity(n);
    for col in batch._cols.iter() {
        let (bufs, null_count): (Vec<*const c_void>, i64) = match col {
            Col::Str(c) => {
                let (v, nc) = validity_ptr(&c.valid);
                (vec![v, c.offsets.as_ptr() as *const c_void, c.data.as_ptr() as *const c_void], nc)
            }
            Col::I32(c) => prim_bufs(&c.values, &c.valid),
            Col::U32(c) => prim_bufs(&c.values, &c.valid),
            Col::I64(c) => prim_bufs(&c.values, &c.valid),
            Col::U64(c) => prim_bufs(&c.values, &c.valid),
            Col::F64(c) => prim_bufs(&c.values, &c.valid),
            Col::Bool(c) => {
                let (v, nc) = validity_ptr(&c.valid);
                (vec![v, c.bits.as_ptr() as *const c_void], nc)
            }
            Col::ListF64(c) => (vec![ptr::null(), c.offsets.as_ptr() as *const c_void], 0),
            Col::ListU64(c) => (vec![ptr::null(), c.offsets.as_ptr() as *const c_void], 0),
        };
        batch.buffers.push(bufs);
        nulls.push(null_count);
    }
    // List children: one primitive child each, with its own buffer array.
    let mut child_value_bufs: Vec<Option<(usize, *const c_void)>> = Vec::with_capacity(n);
    for col in batch._cols.iter() {
        child_value_bufs.push(match col {
            Col::ListF64(c) => Some((c.values.len(), c.values.as_ptr() as *const c_void)),
            Col::ListU64(c) => Some((c.values.len(), c.values.as_ptr() as *const c_void)),
            _ => None,
        });
    }
    for (len, p) in child_value_bufs.iter().flatten() {
        batch.buffers.push(vec![ptr::null(), *p]);
        let idx = batch.buffers.len() - 1;
        let arr = leaf(*len, 0, 2, &mut batch.buffers[idx]);
        batch.grandchildren.push(arr);
    }
    let gptrs: Vec<*mut ArrowArray> = batch.grandchildren.iter_mut().map(|a| a as *mut ArrowArray).collect();
    batch.grandchild_ptrs = gptrs;
    let mut list_i = 0;
    for i in 0..n {
        let nbuf = batch.buffers[i].len();
        let mut arr = leaf(rows, nulls[i], nbuf, &mut batch.buffers[i]);
        if child_value_bufs[i].is_some() {
            arr.n_children = 1;
            arr.children = unsafe { batch.grandchild_ptrs.as_mut_ptr().add(list_i) };
            list_i += 1;
        }
        batch.children.push(arr);
    }
    let cptrs: Vec<*mut ArrowArray> = batch.children.iter_mut().map(|a| a as *mut ArrowArray).collect();
    batch.child_ptrs = cptrs;
    out.length = rows as i64;
    out.null_count = 0;
    out.offset = 0;
    out.n_buffers = 1;
    out.n_children = n as i64;
    out.buffers = batch.root_buffers.as_mut_ptr();
    out.children = batch.child_ptrs.as_mut_ptr();
    out.dictionary = ptr::null_mut();
    out.release = Some(release_root);
    out.private_data = Box::into_raw(batch) as *mut c_void;
}

fn prim_bufs<T>(values: &[T], valid: &Validity) -> (Vec<*const c_void>, i64) {
    let (v, nc) = validity_ptr(valid);
    (vec![v, values.as_ptr() as *const c_void], nc)
}
