//! Image preprocessing as transformers' `CLIPImageProcessor` (PIL backend)
//! does it: decode (JPEG, PNG, WebP), convert to RGB (grey replicated, alpha
//! dropped, CMYK through PIL's formula), resize so the shortest side is
//! `size.shortest_edge` with PIL's bicubic filter, center-crop to
//! `crop_size`, rescale by 1/255 and normalise with the processor's mean and
//! std, giving [3, H, W] f32 values.
//!
//! The resize is Pillow's `ImagingResample` reimplemented (Resample.c): a
//! separable convolution, horizontal pass first, whose taps cover
//! support·max(scale, 1) input pixels, with 8-bit images computed in 22-bit
//! fixed point and rounded back to u8 after each pass.

use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

pub const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";

/// The fields of `preprocessor_config.json` the CLIP pipeline uses.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    /// Resize target: the shortest side, or an exact (height, width).
    pub resize: Option<Resize>,
    /// Center-crop target (height, width).
    pub crop: Option<(usize, usize)>,
    pub rescale_factor: Option<f32>,
    pub mean_std: Option<([f32; 3], [f32; 3])>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resize {
    ShortestEdge(usize),
    Exact(usize, usize),
}

const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

#[derive(Deserialize)]
struct Json {
    #[serde(default = "yes")]
    do_resize: bool,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default = "yes")]
    do_center_crop: bool,
    #[serde(default)]
    crop_size: Option<serde_json::Value>,
    #[serde(default = "yes")]
    do_rescale: bool,
    #[serde(default)]
    rescale_factor: Option<f32>,
    #[serde(default = "yes")]
    do_normalize: bool,
    #[serde(default)]
    image_mean: Option<[f32; 3]>,
    #[serde(default)]
    image_std: Option<[f32; 3]>,
    #[serde(default)]
    resample: Option<u32>,
}

fn yes() -> bool {
    true
}

impl ImageProcessor {
    /// CLIP's defaults for images of `side` pixels (no preprocessor_config.json).
    pub fn clip_default(side: usize) -> Self {
        ImageProcessor { resize: Some(Resize::ShortestEdge(side)), crop: Some((side, side)), rescale_factor: Some(1.0 / 255.0), mean_std: Some((CLIP_MEAN, CLIP_STD)) }
    }

    /// Reads `preprocessor_config.json` in `dir`, or CLIP's defaults for `side`.
    pub fn load(dir: &Path, side: usize) -> Result<Self> {
        let path = dir.join(PREPROCESSOR_CONFIG);
        if !path.exists() {
            return Ok(Self::clip_default(side));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let j: Json = serde_json::from_str(&text).map_err(|e| Error::config(&path, format!("invalid preprocessor config: {e}")))?;
        if j.resample.is_some_and(|r| r != 3) {
            return Err(Error::config(&path, format!("resample {} is not supported (3, bicubic, is)", j.resample.unwrap_or(0))));
        }
        let dim = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_u64()).map(|x| x as usize);
        let resize = match (j.do_resize, &j.size) {
            (false, _) => None,
            (true, None) => Some(Resize::ShortestEdge(side)),
            (true, Some(v)) if v.is_u64() => Some(Resize::ShortestEdge(v.as_u64().unwrap_or(0) as usize)),
            (true, Some(v)) => match (dim(v, "shortest_edge"), dim(v, "height"), dim(v, "width")) {
                (Some(s), _, _) => Some(Resize::ShortestEdge(s)),
                (None, Some(h), Some(w)) => Some(Resize::Exact(h, w)),
                _ => return Err(Error::config(&path, "size needs `shortest_edge` or `height` and `width`")),
            },
        };
        let crop = match (j.do_center_crop, &j.crop_size) {
            (false, _) => None,
            (true, None) => Some((side, side)),
            (true, Some(v)) if v.is_u64() => Some((v.as_u64().unwrap_or(0) as usize, v.as_u64().unwrap_or(0) as usize)),
            (true, Some(v)) => match (dim(v, "height"), dim(v, "width")) {
                (Some(h), Some(w)) => Some((h, w)),
                _ => return Err(Error::config(&path, "crop_size needs `height` and `width`")),
            },
        };
        Ok(ImageProcessor {
            resize,
            crop,
            rescale_factor: j.do_rescale.then(|| j.rescale_factor.unwrap_or(1.0 / 255.0)),
            mean_std: j.do_normalize.then(|| (j.image_mean.unwrap_or(CLIP_MEAN), j.image_std.unwrap_or(CLIP_STD))),
        })
    }

    /// Decodes and preprocesses one image file: [3, H, W] values.
    pub fn preprocess_file(&self, path: &Path) -> Result<Vec<f32>> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let img = image::load_from_memory(&bytes).map_err(|e| Error::data(path, format!("cannot decode image: {e}")))?;
        let rgb = to_rgb(&img);
        Ok(self.preprocess(&Rgb8 { width: rgb.width() as usize, height: rgb.height() as usize, data: rgb.into_raw() }))
    }

    /// Preprocesses decoded RGB pixels: [3, H, W] values.
    pub fn preprocess(&self, img: &Rgb8) -> Vec<f32> {
        let mut img = match self.resize {
            Some(Resize::ShortestEdge(s)) => {
                let (h, w) = shortest_edge_size(img.height, img.width, s);
                resize_bicubic(img, w, h)
            }
            Some(Resize::Exact(h, w)) => resize_bicubic(img, w, h),
            None => img.clone(),
        };
        if let Some((ch, cw)) = self.crop {
            img = center_crop(&img, ch, cw);
        }
        let plane = img.width * img.height;
        let mut out = vec![0f32; 3 * plane];
        for (p, px) in img.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                // transformers rescales in f64, then normalises in f32.
                let mut v = match self.rescale_factor {
                    Some(f) => (px[c] as f64 * f as f64) as f32,
                    None => px[c] as f32,
                };
                if let Some((mean, std)) = self.mean_std {
                    v = (v - mean[c]) / std[c];
                }
                out[c * plane + p] = v;
            }
        }
        out
    }
}

/// 8-bit RGB pixels, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// RGB as PIL's `convert("RGB")`: grey replicated, alpha dropped (not
/// composited). CMYK JPEGs are converted by the decoder.
fn to_rgb(img: &image::DynamicImage) -> image::RgbImage {
    img.to_rgb8()
}

/// transformers' `get_resize_output_image_size(default_to_square=False)`:
/// the short side becomes `size`, the long side int(size · long / short).
fn shortest_edge_size(height: usize, width: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height { (width, height) } else { (height, width) };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    if width <= height {
        (new_long, size)
    } else {
        (size, new_long)
    }
}

/// transformers' `center_crop`: top = (h − ch) // 2, left = (w − cw) // 2;
/// an image smaller than the crop is zero-padded around.
fn center_crop(img: &Rgb8, ch: usize, cw: usize) -> Rgb8 {
    let mut out = vec![0u8; ch * cw * 3];
    let top = (img.height as isize - ch as isize).div_euclid(2);
    let left = (img.width as isize - cw as isize).div_euclid(2);
    for y in 0..ch {
        let sy = y as isize + top;
        if sy < 0 || sy >= img.height as isize {
            continue;
        }
        for x in 0..cw {
            let sx = x as isize + left;
            if sx < 0 || sx >= img.width as isize {
                continue;
            }
            let (s, d) = ((sy as usize * img.width + sx as usize) * 3, (y * cw + x) * 3);
            out[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    Rgb8 { width: cw, height: ch, data: out }
}

/// Pillow's bicubic filter (a = −0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`: for each output
/// pixel, the first input pixel and fixed-point weights of its taps.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as isize).max(0) as usize;
            let xmax = ((center + support + 0.5) as isize).min(in_size as isize) as usize;
            let mut k: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
            let total: f64 = k.iter().sum();
            if total != 0.0 {
                k.iter_mut().for_each(|w| *w /= total);
            }
            let fixed = k.iter().map(|&w| if w < 0.0 { (w * (1 << PRECISION_BITS) as f64 - 0.5) as i32 } else { (w * (1 << PRECISION_BITS) as f64 + 0.5) as i32 }).collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes as PIL's `Image.resize((width, height), BICUBIC)`.
pub fn resize_bicubic(img: &Rgb8, width: usize, height: usize) -> Rgb8 {
    let mut cur = img.clone();
    if width != cur.width {
        let coeffs = coefficients(cur.width, width);
        let mut out = vec![0u8; width * cur.height * 3];
        for y in 0..cur.height {
            for (x, (first, k)) in coeffs.iter().enumerate() {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (t, &w) in k.iter().enumerate() {
                        ss += cur.data[(y * cur.width + first + t) * 3 + c] as i64 * w as i64;
                    }
                    out[(y * width + x) * 3 + c] = clip8(ss);
                }
            }
        }
        cur = Rgb8 { width, height: cur.height, data: out };
    }
    if height != cur.height {
        let coeffs = coefficients(cur.height, height);
        let mut out = vec![0u8; cur.width * height * 3];
        for (y, (first, k)) in coeffs.iter().enumerate() {
            for x in 0..cur.width {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (t, &w) in k.iter().enumerate() {
                        ss += cur.data[((first + t) * cur.width + x) * 3 + c] as i64 * w as i64;
                    }
                    out[(y * cur.width + x) * 3 + c] = clip8(ss);
                }
            }
        }
        cur = Rgb8 { width: cur.width, height, data: out };
    }
    cur
}
