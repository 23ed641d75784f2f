//! The packed-panel f32 GEMM (`GemmKernel::Packed`) on every tier that runs it (AVX2 + FMA and
//! AVX-512 on x86-64): against an f64 reference within the classic dot-product error bound, bit
//! for bit against a scalar model of its summation order, at odd shapes (1, 0, not multiples of
//! the 6 x 16 tile or of the k block), through strided and transposed views, with alpha and
//! beta; the same bits on both tiers, for any split of C, and from `gemm_par` on any thread
//! count. A tier the CPU lacks is a named skip (`SKIPPED <test>: CPU lacks ..` on stderr).

use std::io::Write;

use proptest::prelude::*;
use tensor::cpu::{tier, Tier};
use tensor::gemm::PACKED_KC;
use tensor::testing::{in_pool, require_tier};
use tensor::{gemm_par_split, gemm_with, GemmKernel, GemmSplit, MatMut, MatRef};

/// How an operand is stored.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Contiguous rows.
    RowMajor,
    /// Contiguous columns (a transposed row-major matrix).
    ColMajor,
    /// Rows 3 elements longer than the matrix (a block of a wider one).
    Padded,
    /// Every second element of rows 1 element longer than that (no unit stride).
    Gapped,
}

const LAYOUTS: [Layout; 4] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::Padded,
    Layout::Gapped,
];

/// A matrix stored in `layout`: its slice and strides.
struct Stored {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Stored {
    /// `rows x cols` values from `value(i, j)`, stored in `layout`; unused slots hold NaN, so
    /// a kernel that reads outside the view shows up.
    fn new(rows: usize, cols: usize, layout: Layout, value: impl Fn(usize, usize) -> f32) -> Self {
        let (rs, cs) = match layout {
            Layout::RowMajor => (cols, 1),
            Layout::ColMajor => (1, rows.max(1)),
            Layout::Padded => (cols + 3, 1),
            Layout::Gapped => (2 * cols + 1, 2),
        };
        let len = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        };
        let mut data = vec![f32::NAN; len];
        for i in 0..rows {
            for j in 0..cols {
                data[i * rs + j * cs] = value(i, j);
            }
        }
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }
    fn view(&self) -> MatRef<'_, f32> {
        MatRef::new(&self.data, self.rows, self.cols, self.rs, self.cs)
    }
    fn view_mut(&mut self) -> MatMut<'_, f32> {
        MatMut::new(&mut self.data, self.rows, self.cols, self.rs, self.cs)
    }
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// Deterministic values in [-1, 1) with a spread of magnitudes.
fn value(seed: u64, i: usize, j: usize) -> f32 {
    let mut s = seed ^ ((i as u64) << 32) ^ (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    s ^= s >> 29;
    s = s.wrapping_mul(6364136223846793005);
    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// One test product: A, B, C's old value, alpha and beta.
struct Case {
    a: Stored,
    b: Stored,
    c0: Stored,
    alpha: f32,
    beta: f32,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    fn new(
        (m, k, n): (usize, usize, usize),
        (la, lb, lc): (Layout, Layout, Layout),
        alpha: f32,
        beta: f32,
        seed: u64,
    ) -> Self {
        Self {
            a: Stored::new(m, k, la, |i, j| value(seed, i, j)),
            b: Stored::new(k, n, lb, |i, j| value(seed + 1, i, j)),
            c0: Stored::new(m, n, lc, |i, j| {
                if beta == 0.0 {
                    f32::NAN // beta = 0 must ignore C's old value, even NaN
                } else {
                    value(seed + 2, i, j)
                }
            }),
            alpha,
            beta,
        }
    }

    /// C after `gemm_with(kernel, ..)`, stored as C's layout.
    fn run(&self, kernel: GemmKernel) -> Stored {
        let mut c = Stored {
            data: self.c0.data.clone(),
            ..self.c0
        };
        gemm_with(
            kernel,
            self.alpha,
            self.a.view(),
            self.b.view(),
            self.beta,
            c.view_mut(),
        );
        c
    }

    /// Checks `c` against the f64 product: `|c - exact| <= (k + 2) * eps * (sum |alpha a b| +
    /// |beta c0|)` per element, the worst-case bound of a k-term f32 sum plus the scalings.
    fn check_close(&self, c: &Stored, what: &str) -> Result<(), String> {
        let (m, k, n) = (self.a.rows, self.a.cols, self.b.cols);
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut magnitude) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let prod = f64::from(self.a.at(i, p)) * f64::from(self.b.at(p, j));
                    exact += f64::from(self.alpha) * prod;
                    magnitude += (f64::from(self.alpha) * prod).abs();
                }
                if self.beta != 0.0 {
                    let old = f64::from(self.beta) * f64::from(self.c0.at(i, j));
                    exact += old;
                    magnitude += old.abs();
                }
                let bound = (k + 2) as f64 * f64::from(f32::EPSILON) * magnitude;
                let got = f64::from(c.at(i, j));
                // written as `!(.. <= ..)` so that a NaN counts as a failure
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                let outside = !((got - exact).abs() <= bound);
                if outside {
                    return Err(format!(
                        "{what}: C[{i},{j}] = {got:e}, exact {exact:e}, bound {bound:e} ({m}x{k}x{n})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The contract's summation order in scalar code: per element, blocks of `PACKED_KC`
    /// products summed from zero by fused multiply-adds in `k` order, added to C in turn.
    fn model(&self) -> Vec<u32> {
        let (m, k, n) = (self.a.rows, self.a.cols, self.b.cols);
        let mut out = Vec::with_capacity(m * n);
        for i in 0..m {
            for j in 0..n {
                let mut c = self.c0.at(i, j);
                let mut starts: Vec<usize> = (0..k).step_by(PACKED_KC).collect();
                if starts.is_empty() {
                    starts.push(0); // k = 0: one empty block, so C = beta * C
                }
                for (block, &p0) in starts.iter().enumerate() {
                    let mut s = 0.0f32;
                    for p in p0..(p0 + PACKED_KC).min(k) {
                        s = self.a.at(i, p).mul_add(self.b.at(p, j), s);
                    }
                    let x = self.alpha * s;
                    c = if block > 0 {
                        c + x
                    } else if self.beta == 0.0 {
                        x
                    } else {
                        self.beta * c + x
                    };
                }
                out.push(c.to_bits());
            }
        }
        out
    }
}

/// C's elements in (i, j) order, as bits.
fn bits(c: &Stored) -> Vec<u32> {
    let mut out = Vec::with_capacity(c.rows * c.cols);
    for i in 0..c.rows {
        for j in 0..c.cols {
            out.push(c.at(i, j).to_bits());
        }
    }
    out
}

/// Shapes around the 6 x 16 tile, the 256-deep k block and the 120-row A block.
const SHAPES: [(usize, usize, usize); 14] = [
    (0, 5, 3),
    (4, 5, 0),
    (3, 0, 4),
    (1, 1, 1),
    (6, 256, 16),
    (7, 257, 17),
    (5, 255, 15),
    (13, 40, 33),
    (1, 600, 70),
    (70, 600, 1),
    (121, 96, 50),
    (130, 520, 48),
    (37, 1, 100),
    (250, 31, 35),
];

/// Every shape, layout and scaling on `tier`: within the f64 bound and bit for bit the model.
fn matches_reference_and_model(tier: Tier) {
    let scalings = [(1.0, 0.0), (1.0, 1.0), (0.5, -2.0), (-3.0, 0.0)];
    for (s, &shape) in SHAPES.iter().enumerate() {
        for (l, &layouts) in [
            (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
            (Layout::ColMajor, Layout::ColMajor, Layout::ColMajor),
            (Layout::RowMajor, Layout::ColMajor, Layout::Padded),
            (Layout::Gapped, Layout::Padded, Layout::Gapped),
            (Layout::Padded, Layout::Gapped, Layout::ColMajor),
        ]
        .iter()
        .enumerate()
        {
            for &(alpha, beta) in &scalings {
                let case = Case::new(shape, layouts, alpha, beta, (s * 31 + l) as u64);
                let c = case.run(GemmKernel::Packed(tier));
                let what = format!("{tier} {shape:?} {layouts:?} alpha {alpha} beta {beta}");
                if let Err(msg) = case.check_close(&c, &what) {
                    panic!("{msg}");
                }
                assert_eq!(bits(&c), case.model(), "{what}: not the contract's order");
            }
        }
    }
}

#[test]
fn packed_gemm_matches_f64_and_its_summation_order_needs_avx2() {
    if require_tier(
        Tier::Avx2,
        "packed_gemm_matches_f64_and_its_summation_order_needs_avx2",
    ) {
        matches_reference_and_model(Tier::Avx2);
    }
}

#[test]
fn packed_gemm_matches_f64_and_its_summation_order_needs_avx512() {
    if require_tier(
        Tier::Avx512,
        "packed_gemm_matches_f64_and_its_summation_order_needs_avx512",
    ) {
        matches_reference_and_model(Tier::Avx512);
    }
}

#[test]
fn avx2_and_avx512_packed_gemms_give_the_same_bits_needs_avx512() {
    if !require_tier(
        Tier::Avx512,
        "avx2_and_avx512_packed_gemms_give_the_same_bits_needs_avx512",
    ) {
        return;
    }
    for (s, &shape) in SHAPES.iter().chain(&[(200, 1100, 300)]).enumerate() {
        for (l, &la) in LAYOUTS.iter().enumerate() {
            let lb = LAYOUTS[(l + s) % 4];
            let case = Case::new(shape, (la, lb, Layout::RowMajor), 1.0, 1.0, s as u64);
            assert_eq!(
                bits(&case.run(GemmKernel::Packed(Tier::Avx2))),
                bits(&case.run(GemmKernel::Packed(Tier::Avx512))),
                "{shape:?} {la:?} {lb:?}"
            );
        }
    }
}

#[test]
fn a_split_of_c_and_the_thread_count_change_no_bit_needs_avx2() {
    if !require_tier(
        Tier::Avx2,
        "a_split_of_c_and_the_thread_count_change_no_bit_needs_avx2",
    ) {
        return;
    }
    // Blocks of rows and columns of C computed alone (other tiles, other A and B blocks)
    // give the same bits as the whole product.
    let (m, k, n) = (131, 700, 83);
    let case = Case::new(
        (m, k, n),
        (Layout::RowMajor, Layout::ColMajor, Layout::RowMajor),
        1.0,
        1.0,
        7,
    );
    let whole = case.run(GemmKernel::Packed(Tier::Avx2));
    for (r0, rows, c0, cols) in [
        (0, 7, 0, 83),
        (5, 61, 3, 17),
        (120, 11, 66, 17),
        (1, 1, 1, 1),
    ] {
        let mut part = vec![0.0f32; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                part[i * cols + j] = case.c0.at(r0 + i, c0 + j);
            }
        }
        gemm_with(
            GemmKernel::Packed(Tier::Avx2),
            1.0,
            case.a.view().row_block(r0, rows),
            case.b.view().col_block(c0, cols),
            1.0,
            MatMut::row_major(&mut part, rows, cols),
        );
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(
                    part[i * cols + j].to_bits(),
                    whole.at(r0 + i, c0 + j).to_bits(),
                    "block at ({r0},{c0}) {rows}x{cols}: element ({i},{j})"
                );
            }
        }
    }
    // `gemm_par` picks the packed GEMM for this product on an AVX2 or AVX-512 tier; every
    // split and pool size gives the same bits as one call.
    if !tensor::packed_available(tier()) {
        // straight to stderr, past the harness's capture, like `require_tier`
        let line = format!(
            "SKIPPED gemm_par_on_the_packed_gemm: the active tier {} runs none\n",
            tier()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        return;
    }
    let (m, k, n) = (260, 300, 200);
    let case = Case::new(
        (m, k, n),
        (Layout::RowMajor, Layout::ColMajor, Layout::RowMajor),
        1.0,
        0.0,
        9,
    );
    let serial = case.run(GemmKernel::Packed(tier()));
    for split in [
        GemmSplit::Rows(16),
        GemmSplit::Rows(130),
        GemmSplit::Cols(32),
        GemmSplit::for_shape(m, k, n),
    ] {
        for threads in [1, 2, 3] {
            let mut c = vec![0.0f32; m * n];
            in_pool(threads, || {
                gemm_par_split(1.0, case.a.view(), case.b.view(), 0.0, &mut c, split)
            });
            let got: Vec<u32> = c.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, bits(&serial), "{split:?} on {threads} threads");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random shapes (k across several blocks), layouts and beta: within the f64 bound and the
    /// model's bits, on the active tier's packed GEMM (AVX2's where the active tier has none).
    #[test]
    fn random_shapes_match_f64_and_the_model(
        m in 1usize..40,
        k in 0usize..700,
        n in 1usize..40,
        la in 0usize..4,
        lb in 0usize..4,
        lc in 0usize..4,
        beta in prop::sample::select(vec![0.0f32, 1.0, 0.25]),
        seed in 0u64..1000,
    ) {
        let tier = if tensor::packed_available(tier()) { tier() } else { Tier::Avx2 };
        if !require_tier(tier, "random_shapes_match_f64_and_the_model_needs_avx2") {
            return Ok(());
        }
        let case = Case::new((m, k, n), (LAYOUTS[la], LAYOUTS[lb], LAYOUTS[lc]), 1.0, beta, seed);
        let c = case.run(GemmKernel::Packed(tier));
        case.check_close(&c, &format!("{tier}")).map_err(TestCaseError::fail)?;
        prop_assert_eq!(bits(&c), case.model());
    }
}

#[test]
#[should_panic(expected = "no packed GEMM on tier portable")]
fn the_portable_tier_has_no_packed_gemm() {
    let a = [1.0f32; 4];
    let mut c = [0.0f32; 4];
    gemm_with(
        GemmKernel::Packed(Tier::Portable),
        1.0,
        MatRef::row_major(&a, 2, 2),
        MatRef::row_major(&a, 2, 2),
        0.0,
        MatMut::row_major(&mut c, 2, 2),
    );
}
