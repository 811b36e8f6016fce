//! A tiny raster: filled circles, rectangles and thick line segments on an
//! RGB image, in floating-point pixel coordinates. Enough to draw people,
//! props and scenes; no anti-aliasing, so output bytes are exact.

use image::{Rgb, RgbImage};

pub type Color = [u8; 3];

pub struct Canvas {
    pub img: RgbImage,
}

impl Canvas {
    pub fn new(size: u32, fill: Color) -> Self {
        Canvas { img: RgbImage::from_pixel(size, size, Rgb(fill)) }
    }

    pub fn size(&self) -> f32 {
        self.img.width() as f32
    }

    fn put(&mut self, x: i64, y: i64, c: Color) {
        if x >= 0 && y >= 0 && (x as u32) < self.img.width() && (y as u32) < self.img.height() {
            self.img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }

    /// Fills pixels whose centre satisfies `inside`, within a bounding box.
    fn fill_where(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: Color, inside: impl Fn(f32, f32) -> bool) {
        let (w, h) = (self.img.width() as f32, self.img.height() as f32);
        let (xa, xb) = (x0.max(0.0).floor() as i64, x1.min(w - 1.0).ceil() as i64);
        let (ya, yb) = (y0.max(0.0).floor() as i64, y1.min(h - 1.0).ceil() as i64);
        for y in ya..=yb {
            for x in xa..=xb {
                if inside(x as f32 + 0.5, y as f32 + 0.5) {
                    self.put(x, y, c);
                }
            }
        }
    }

    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: Color) {
        let (xa, xb, ya, yb) = (x0.min(x1), x0.max(x1), y0.min(y1), y0.max(y1));
        self.fill_where(xa, ya, xb, yb, c, |x, y| x >= xa && x <= xb && y >= ya && y <= yb);
    }

    pub fn circle(&mut self, cx: f32, cy: f32, r: f32, c: Color) {
        let r = r.max(0.6);
        self.fill_where(cx - r, cy - r, cx + r, cy + r, c, |x, y| (x - cx).powi(2) + (y - cy).powi(2) <= r * r);
    }

    /// A ring of width `w` (outline of a circle).
    pub fn ring(&mut self, cx: f32, cy: f32, r: f32, w: f32, c: Color) {
        let (ro, ri) = (r.max(0.8), (r - w.max(0.7)).max(0.0));
        self.fill_where(cx - ro, cy - ro, cx + ro, cy + ro, c, |x, y| {
            let d = (x - cx).powi(2) + (y - cy).powi(2);
            d <= ro * ro && d >= ri * ri
        });
    }

    /// A segment with round caps, `w` pixels wide.
    pub fn line(&mut self, a: (f32, f32), b: (f32, f32), w: f32, c: Color) {
        let r = (w / 2.0).max(0.55);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = (dx * dx + dy * dy).max(1e-6);
        self.fill_where(a.0.min(b.0) - r, a.1.min(b.1) - r, a.0.max(b.0) + r, a.1.max(b.1) + r, c, |x, y| {
            let t = (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0);
            let (px, py) = (a.0 + t * dx - x, a.1 + t * dy - y);
            px * px + py * py <= r * r
        });
    }

    /// Adds uniform noise in [-amp, amp] to every channel.
    pub fn noise(&mut self, amp: i32, rng: &mut crate::rng::Rng) {
        for p in self.img.pixels_mut() {
            for ch in p.0.iter_mut() {
                let n = rng.below((2 * amp + 1) as usize) as i32 - amp;
                *ch = (*ch as i32 + n).clamp(0, 255) as u8;
            }
        }
    }
}
