//! Edge maps and correlations: luma, Sobel gradient magnitude, Pearson and Spearman coefficients.

/// Gray value of a planar (C, H, W) image: itself for one channel, Rec. 601 luma
/// 0.299 R + 0.587 G + 0.114 B for three, the channel mean otherwise. Returns H * W values.
pub fn luma(image: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let plane = h * w;
    assert_eq!(
        image.len(),
        c * plane,
        "luma: {} values, expected {c}*{h}*{w}",
        image.len()
    );
    match c {
        1 => image.to_vec(),
        3 => (0..plane)
            .map(|i| 0.299 * image[i] + 0.587 * image[plane + i] + 0.114 * image[2 * plane + i])
            .collect(),
        _ => (0..plane)
            .map(|i| (0..c).map(|k| image[k * plane + i]).sum::<f32>() / c.max(1) as f32)
            .collect(),
    }
}

/// Sobel gradient magnitude sqrt(Gx^2 + Gy^2) of an (H, W) gray image, with the 3x3 kernels
/// Gx = [-1 0 1; -2 0 2; -1 0 1] and Gy its transpose.
///
/// The border is replicated (not zero-padded), so a bright image border is not an edge: an edge
/// is a change inside the picture.
pub fn sobel_magnitude(gray: &[f32], h: usize, w: usize) -> Vec<f32> {
    assert_eq!(
        gray.len(),
        h * w,
        "sobel_magnitude: {} values, expected {h}*{w}",
        gray.len()
    );
    let at = |y: isize, x: isize| -> f32 {
        let yy = y.clamp(0, h as isize - 1) as usize;
        let xx = x.clamp(0, w as isize - 1) as usize;
        gray[yy * w + xx]
    };
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = (at(y - 1, x + 1) + 2.0 * at(y, x + 1) + at(y + 1, x + 1))
                - (at(y - 1, x - 1) + 2.0 * at(y, x - 1) + at(y + 1, x - 1));
            let gy = (at(y + 1, x - 1) + 2.0 * at(y + 1, x) + at(y + 1, x + 1))
                - (at(y - 1, x - 1) + 2.0 * at(y - 1, x) + at(y - 1, x + 1));
            out.push((gx * gx + gy * gy).sqrt());
        }
    }
    out
}

/// Pearson's correlation of two equally long series, in f64. `None` when it is undefined: fewer
/// than two values, or either series constant (zero variance).
pub fn pearson(a: &[f32], b: &[f32]) -> Option<f64> {
    assert_eq!(
        a.len(),
        b.len(),
        "pearson: lengths {} and {}",
        a.len(),
        b.len()
    );
    let n = a.len();
    if n < 2 {
        return None;
    }
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        return None;
    }
    // Rounding can push |r| a hair past 1 for perfectly correlated series.
    Some((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0))
}

/// Ranks 1..n with ties given their average rank.
fn ranks(v: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0f32; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end; their mean is (start+end+1)/2.
        let avg = (start + end + 1) as f32 / 2.0;
        for &i in &order[start..end] {
            r[i] = avg;
        }
        start = end;
    }
    r
}

/// Spearman's rank correlation (Pearson's on average ranks), `None` when undefined.
/// Gradient maps are heavy-tailed: ranks keep a few huge values from deciding the score.
pub fn spearman(a: &[f32], b: &[f32]) -> Option<f64> {
    assert_eq!(
        a.len(),
        b.len(),
        "spearman: lengths {} and {}",
        a.len(),
        b.len()
    );
    pearson(&ranks(a), &ranks(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sobel_of_a_vertical_step() {
        // Columns 0..2 dark, 2..4 bright: |Gx| = (1 + 2 + 1) * 1 = 4 on the two columns beside
        // the step, 0 elsewhere (the replicated border adds no edge).
        let gray: Vec<f32> = (0..16)
            .map(|i| if i % 4 >= 2 { 1.0 } else { 0.0 })
            .collect();
        let m = sobel_magnitude(&gray, 4, 4);
        for y in 0..4 {
            assert_eq!(&m[y * 4..y * 4 + 4], &[0.0, 4.0, 4.0, 0.0]);
        }
    }

    #[test]
    fn correlations() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&a, &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &[-1.0, -2.0, -3.0, -4.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&a, &[1.0; 4]), None);
        // A monotone but non-linear relation has Spearman 1.
        assert!((spearman(&a, &[1.0, 8.0, 27.0, 1000.0]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn luma_weights() {
        let rgb = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let l = luma(&rgb, 3, 1, 2);
        assert!((l[0] - 0.299).abs() < 1e-7 && (l[1] - 0.587).abs() < 1e-7);
    }
}
