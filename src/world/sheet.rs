//! The contact sheet: one row per interaction (most frequent first), its
//! label, then a few examples, for people to check that interactions look
//! distinct.

use super::canvas::Canvas;
use super::font::draw_text;
use super::inventory::{pick_scene, Interaction};
use super::render::render;
use crate::rng::Rng;

const EXAMPLES: usize = 5;
const LABEL_WIDTH: u32 = 230;

pub fn contact_sheet(inv: &[Interaction], seed: u64, cell: u32) -> image::RgbImage {
    let row_h = cell + 4;
    let width = LABEL_WIDTH + EXAMPLES as u32 * (cell + 2);
    let mut sheet = image::RgbImage::from_pixel(width, row_h * inv.len() as u32, image::Rgb([255, 255, 255]));
    for (r, it) in inv.iter().enumerate() {
        let y = r as u32 * row_h;
        let mut label = Canvas::new(LABEL_WIDTH, [255, 255, 255]);
        draw_text(&mut label, &it.label, 4.0, (cell as f32 - 7.0) / 2.0, 1.0, [0, 0, 0]);
        image::imageops::replace(&mut sheet, &image::imageops::crop_imm(&label.img, 0, 0, LABEL_WIDTH, cell).to_image(), 0, y as i64);
        for e in 0..EXAMPLES {
            let mut rng = Rng::new(seed ^ ((r as u64) << 20) ^ e as u64);
            let scene = pick_scene(it, &mut rng);
            let img = render(&it.signature, scene, cell, 0, &mut rng);
            image::imageops::replace(&mut sheet, &img, (LABEL_WIDTH + e as u32 * (cell + 2)) as i64, y as i64);
        }
    }
    sheet
}
