//! CLIP's head on the host, in f64: L2-normalised embeddings, cosine
//! similarities scaled by exp(logit_scale), and the symmetric contrastive
//! loss (`image_text_contrastive_loss`: the mean of the text→image and
//! image→text cross-entropies with the diagonal as targets), with its
//! gradient. Embeddings are [batch, projection_dim], small enough that the
//! device hands them over rather than running a kernel per step.

/// What the head computed for one batch.
pub struct Contrastive {
    /// Normalised embeddings, [b, p] each.
    pub text_embeds: Vec<f32>,
    pub image_embeds: Vec<f32>,
    /// logits_per_image [b_images, b_texts] (= logits_per_textᵀ).
    pub logits_per_image: Vec<f32>,
    pub loss: f32,
    /// d loss / d raw (unnormalised) text and image embeddings, and d loss / d logit_scale.
    pub d_text: Vec<f32>,
    pub d_image: Vec<f32>,
    pub d_logit_scale: f32,
}

fn normalise(x: &[f32], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut out = Vec::with_capacity(x.len());
    let mut norms = Vec::with_capacity(x.len() / p.max(1));
    for row in x.chunks(p) {
        let n = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
        norms.push(n);
        out.extend(row.iter().map(|&v| v as f64 / n));
    }
    (out, norms)
}

/// d/dv of v/|v| applied to `dx`: (dx − x·(x·dx)) / |v|, per row.
fn normalise_backward(x: &[f64], norms: &[f64], dx: &[f64], p: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for ((xr, dr), n) in x.chunks(p).zip(dx.chunks(p)).zip(norms) {
        let dot: f64 = xr.iter().zip(dr).map(|(a, b)| a * b).sum();
        out.extend(xr.iter().zip(dr).map(|(&a, &g)| ((g - a * dot) / n) as f32));
    }
    out
}

/// The head for `b` texts and `b` images (raw projected embeddings, [b, p]).
pub fn contrastive(text: &[f32], image: &[f32], logit_scale: f32, b: usize, p: usize) -> Contrastive {
    let (t, tn) = normalise(text, p);
    let (i, inorm) = normalise(image, p);
    let scale = (logit_scale as f64).exp();
    // logits_per_text[x][y] = scale · t_x · i_y
    let logits: Vec<f64> = (0..b * b).map(|k| scale * t[k / b * p..][..p].iter().zip(&i[k % b * p..][..p]).map(|(a, c)| a * c).sum::<f64>()).collect();
    // Cross-entropy with diagonal targets over rows (texts) and over columns (images).
    let mut dlogits = vec![0f64; b * b];
    let mut loss = 0f64;
    for transpose in [false, true] {
        for r in 0..b {
            let at = |c: usize| if transpose { c * b + r } else { r * b + c };
            let max = (0..b).map(|c| logits[at(c)]).fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = (0..b).map(|c| (logits[at(c)] - max).exp()).sum();
            loss += (max + z.ln() - logits[at(r)]) / (2.0 * b as f64);
            for c in 0..b {
                let prob = (logits[at(c)] - max).exp() / z;
                dlogits[at(c)] += (prob - if c == r { 1.0 } else { 0.0 }) / (2.0 * b as f64);
            }
        }
    }
    let mut dt = vec![0f64; b * p];
    let mut di = vec![0f64; b * p];
    for x in 0..b {
        for y in 0..b {
            let g = dlogits[x * b + y] * scale;
            for k in 0..p {
                dt[x * p + k] += g * i[y * p + k];
                di[y * p + k] += g * t[x * p + k];
            }
        }
    }
    let d_logit_scale: f64 = dlogits.iter().zip(&logits).map(|(g, l)| g * l).sum();
    Contrastive {
        text_embeds: t.iter().map(|&v| v as f32).collect(),
        image_embeds: i.iter().map(|&v| v as f32).collect(),
        logits_per_image: (0..b * b).map(|k| logits[(k % b) * b + k / b] as f32).collect(),
        loss: loss as f32,
        d_text: normalise_backward(&t, &tn, &dt, p),
        d_image: normalise_backward(&i, &inorm, &di, p),
        d_logit_scale: d_logit_scale as f32,
    }
}
