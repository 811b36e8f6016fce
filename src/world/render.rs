//! Draws one image of an interaction: a scene, bystanders, the two people in
//! the interaction's poses (random placement, scale, mirroring and colours),
//! the prop, and light noise.

use super::canvas::{Canvas, Color};
use super::pose::{Arm, PersonPose, Posture, Prop, PropAt, Scene, Signature};
use crate::rng::Rng;

type Pt = (f32, f32);

const SKIN: [Color; 5] = [[241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [255, 219, 172]];

fn jitter(c: Color, amount: i32, rng: &mut Rng) -> Color {
    c.map(|v| (v as i32 + rng.below((2 * amount + 1) as usize) as i32 - amount).clamp(0, 255) as u8)
}

fn bright(rng: &mut Rng) -> Color {
    [(40 + rng.below(200)) as u8, (40 + rng.below(200)) as u8, (40 + rng.below(200)) as u8]
}

fn draw_scene(cv: &mut Canvas, scene: Scene, ground: f32, rng: &mut Rng) {
    let s = cv.size();
    let (sky, floor): (Color, Color) = match scene {
        Scene::Stage => ([45, 25, 70], [120, 80, 50]),
        Scene::Court => ([170, 200, 230], [60, 140, 70]),
        Scene::Ring => ([30, 40, 90], [200, 200, 210]),
        Scene::Office => ([225, 210, 180], [150, 120, 90]),
        Scene::Street => ([150, 190, 225], [110, 110, 115]),
        Scene::Park => ([140, 200, 240], [90, 170, 60]),
        Scene::Gala => ([110, 20, 35], [70, 50, 40]),
    };
    let (sky, floor) = (jitter(sky, 12, rng), jitter(floor, 12, rng));
    cv.rect(0.0, 0.0, s, ground, sky);
    cv.rect(0.0, ground, s, s, floor);
    match scene {
        Scene::Stage => cv.circle(s * (0.3 + 0.4 * rng.uniform() as f32), s * 0.15, s * 0.12, [250, 240, 170]),
        Scene::Court => {
            cv.line((0.0, ground + s * 0.04), (s, ground + s * 0.04), s * 0.02, [240, 240, 240]);
            cv.rect(s * 0.47, ground - s * 0.2, s * 0.53, ground, [230, 230, 230]);
            // net post
        }
        Scene::Ring => {
            for k in 1..4 {
                let y = ground - s * 0.08 * k as f32;
                cv.line((0.0, y), (s, y), s * 0.015, [200, 30, 30]);
            }
        }
        Scene::Office => {
            cv.rect(s * 0.65, s * 0.1, s * 0.9, s * 0.35, [170, 210, 240]); // window
            cv.rect(s * 0.05, ground - s * 0.12, s * 0.3, ground - s * 0.09, [100, 70, 40]);
            // desk
        }
        Scene::Street => {
            cv.rect(s * 0.05, s * 0.05, s * 0.25, ground, [150, 140, 130]); // building
            cv.line((0.0, ground + s * 0.06), (s, ground + s * 0.06), s * 0.012, [240, 220, 60]);
        }
        Scene::Park => {
            let x = s * (0.1 + 0.8 * rng.uniform() as f32);
            cv.rect(x - s * 0.02, ground - s * 0.25, x + s * 0.02, ground, [100, 70, 40]);
            cv.circle(x, ground - s * 0.3, s * 0.1, [40, 120, 40]);
        }
        Scene::Gala => {
            for k in 0..6 {
                let x = s * (k as f32 + 0.5) / 6.0;
                cv.line((x, 0.0), (x, ground), s * 0.025, [140, 30, 45]);
            }
        }
    }
}

struct Body {
    h: f32,
    skin: Color,
    shirt: Color,
    pants: Color,
}

/// Where a drawn person's hands and head ended up.
struct Drawn {
    front_hand: Pt,
    head: Pt,
}

fn rotate(p: Pt, pivot: Pt, deg: f32) -> Pt {
    let (s, c) = deg.to_radians().sin_cos();
    let (dx, dy) = (p.0 - pivot.0, p.1 - pivot.1);
    (pivot.0 + dx * c - dy * s, pivot.1 + dx * s + dy * c)
}

fn arm_points(shoulder: Pt, a: Arm, f: f32, h: f32) -> (Pt, Pt) {
    let dir = |deg: f32| (f * deg.to_radians().sin(), deg.to_radians().cos());
    let (d1, d2) = (dir(a.shoulder), dir(a.shoulder + a.bend));
    let elbow = (shoulder.0 + 0.17 * h * d1.0, shoulder.1 + 0.17 * h * d1.1);
    let hand = (elbow.0 + 0.16 * h * d2.0, elbow.1 + 0.16 * h * d2.1);
    (elbow, hand)
}

/// Draws a person whose hip is above `x`, feet on `ground`, facing `f` (±1).
fn draw_person(cv: &mut Canvas, x: f32, ground: f32, f: f32, pose: &PersonPose, body: &Body) -> Drawn {
    let h = body.h;
    let leg = 0.45 * h;
    // Joints in an upright frame; postures then move/rotate them.
    let hip_y = match pose.posture {
        Posture::Run => ground - 0.9 * leg,
        Posture::Kneel => ground - 0.5 * leg,
        _ => ground - leg,
    };
    let hip = (x, hip_y);
    let (knees, feet): ([Pt; 2], [Pt; 2]) = match pose.posture {
        Posture::Run => ([(x + f * 0.14 * h, hip_y + 0.2 * h), (x - f * 0.08 * h, hip_y + 0.25 * h)], [(x + f * 0.22 * h, ground), (x - f * 0.24 * h, ground - 0.06 * h)]),
        Posture::Kneel => ([(x + f * 0.2 * h, hip_y), (x - f * 0.02 * h, ground)], [(x + f * 0.2 * h, ground), (x - f * 0.22 * h, ground)]),
        _ => ([(x - 0.04 * h, hip_y + 0.22 * h), (x + 0.04 * h, hip_y + 0.22 * h)], [(x - 0.06 * h, ground), (x + 0.06 * h, ground)]),
    };
    let neck = rotate((x, hip_y - 0.32 * h), hip, f * pose.lean);
    let head = rotate((x, hip_y - 0.32 * h - 0.11 * h), hip, f * pose.lean);
    let shoulder = rotate((x, hip_y - 0.29 * h), hip, f * pose.lean);
    let (fe, fh) = arm_points(shoulder, pose.front, f, h);
    let (be, bh) = arm_points(shoulder, pose.back, f, h);
    let mut pts = vec![hip, knees[0], knees[1], feet[0], feet[1], neck, head, shoulder, fe, fh, be, bh];
    // Whole-body placements.
    let (pivot, turn, lift) = match pose.posture {
        Posture::Lie => ((x, ground), -f * 85.0, (f * 0.1 * h, -0.06 * h)),
        Posture::Carried => (hip, -f * 80.0, (0.0, -0.25 * h)),
        Posture::Raised => (hip, 0.0, (0.0, -0.3 * h)),
        _ => (hip, 0.0, (0.0, 0.0)),
    };
    if turn != 0.0 || lift != (0.0, 0.0) {
        for p in pts.iter_mut() {
            let r = rotate(*p, pivot, turn);
            *p = (r.0 + lift.0, r.1 + lift.1);
        }
    }
    let [hip, k0, k1, f0, f1, neck, head, shoulder, fe, fh, be, bh] = pts[..] else { unreachable!() };
    let limb = (0.06 * h).max(1.0);
    cv.line(shoulder, be, limb, body.shirt);
    cv.line(be, bh, limb, body.skin);
    cv.line(hip, k1, limb * 1.2, body.pants);
    cv.line(k1, f1, limb * 1.1, body.pants);
    cv.line(hip, k0, limb * 1.2, body.pants);
    cv.line(k0, f0, limb * 1.1, body.pants);
    cv.line(hip, neck, 0.13 * h, body.shirt);
    cv.circle(head.0, head.1, 0.09 * h, body.skin);
    cv.line(shoulder, fe, limb, body.shirt);
    cv.line(fe, fh, limb, body.skin);
    Drawn { front_hand: fh, head }
}

fn draw_prop(cv: &mut Canvas, prop: Prop, p: Pt, s: f32) {
    const GOLD: Color = [222, 180, 40];
    match prop {
        Prop::Trophy => {
            cv.circle(p.0, p.1 - 0.45 * s, 0.38 * s, GOLD);
            cv.rect(p.0 - 0.08 * s, p.1 - 0.2 * s, p.0 + 0.08 * s, p.1 + 0.1 * s, GOLD);
            cv.rect(p.0 - 0.3 * s, p.1 + 0.1 * s, p.0 + 0.3 * s, p.1 + 0.25 * s, [120, 80, 30]);
        }
        Prop::Flowers => {
            cv.line(p, (p.0, p.1 - 0.8 * s), 0.12 * s, [30, 130, 40]);
            for (dx, c) in [(-0.25, [230, 40, 90]), (0.0, [250, 220, 40]), (0.25, [200, 60, 220])] {
                cv.circle(p.0 + dx * s, p.1 - 0.85 * s, 0.22 * s, c);
            }
        }
        Prop::Ball => cv.circle(p.0, p.1, 0.35 * s, [235, 120, 25]),
        Prop::Microphone => {
            cv.line(p, (p.0, p.1 - 0.5 * s), 0.12 * s, [30, 30, 30]);
            cv.circle(p.0, p.1 - 0.55 * s, 0.18 * s, [90, 90, 90]);
        }
        Prop::Camera => {
            cv.rect(p.0 - 0.45 * s, p.1 - 0.3 * s, p.0 + 0.45 * s, p.1 + 0.3 * s, [20, 20, 20]);
            cv.circle(p.0, p.1, 0.18 * s, [150, 150, 170]);
        }
        Prop::Document => cv.rect(p.0 - 0.3 * s, p.1 - 0.4 * s, p.0 + 0.3 * s, p.1 + 0.4 * s, [250, 250, 250]),
        Prop::Baton => cv.line((p.0 - 0.4 * s, p.1), (p.0 + 0.4 * s, p.1), 0.2 * s, [210, 20, 20]),
        Prop::Racket => {
            cv.line(p, (p.0, p.1 - 0.4 * s), 0.1 * s, [60, 40, 20]);
            cv.ring(p.0, p.1 - 0.75 * s, 0.38 * s, 0.1 * s, [30, 90, 200]);
        }
        Prop::Chessboard => {
            let (w, top) = (2.2 * s, p.1 - 0.15 * s);
            cv.rect(p.0 - 0.1 * s, top, p.0 + 0.1 * s, p.1 + 1.6 * s, [110, 70, 35]); // table leg
            for k in 0..6 {
                let x0 = p.0 - w / 2.0 + k as f32 * w / 6.0;
                let c = if k % 2 == 0 { [20, 20, 20] } else { [240, 240, 240] };
                cv.rect(x0, top - 0.35 * s, x0 + w / 6.0, top, c);
            }
        }
        Prop::Crown => {
            cv.rect(p.0 - 0.4 * s, p.1 - 0.15 * s, p.0 + 0.4 * s, p.1 + 0.15 * s, GOLD);
            for dx in [-0.35, 0.0, 0.35] {
                cv.circle(p.0 + dx * s, p.1 - 0.25 * s, 0.12 * s, GOLD);
            }
        }
        Prop::Food => {
            cv.rect(p.0 - 0.35 * s, p.1 - 0.05 * s, p.0 + 0.35 * s, p.1 + 0.08 * s, [245, 245, 245]);
            cv.circle(p.0, p.1 - 0.15 * s, 0.15 * s, [200, 60, 30]);
        }
    }
}

fn random_body(h: f32, muted: bool, rng: &mut Rng) -> Body {
    let mut shirt = bright(rng);
    let mut pants = [(20 + rng.below(90)) as u8, (20 + rng.below(90)) as u8, (40 + rng.below(110)) as u8];
    if muted {
        shirt = shirt.map(|v| v / 2 + 60);
        pants = pants.map(|v| v / 2 + 50);
    }
    Body { h, skin: SKIN[rng.below(SKIN.len())], shirt, pants }
}

/// Renders the interaction `sig` in `scene` at `size`×`size` pixels, with
/// per-channel noise of amplitude `noise`.
pub fn render(sig: &Signature, scene: Scene, size: u32, noise: i32, rng: &mut Rng) -> image::RgbImage {
    let s = size as f32;
    let ground = s * (0.84 + 0.1 * rng.uniform() as f32);
    let mut cv = Canvas::new(size, [0, 0, 0]);
    draw_scene(&mut cv, scene, ground, rng);
    // Bystanders: smaller, muted, standing, not interacting.
    for _ in 0..rng.below(3) {
        let h = s * (0.22 + 0.08 * rng.uniform() as f32);
        let x = if rng.uniform() < 0.5 { s * (0.04 + 0.1 * rng.uniform() as f32) } else { s * (0.86 + 0.1 * rng.uniform() as f32) };
        let f = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
        let pose = PersonPose { posture: Posture::Stand, front: Arm { shoulder: 10.0, bend: 0.0 }, back: Arm { shoulder: 10.0, bend: 0.0 }, lean: 0.0, away: false };
        draw_person(&mut cv, x, ground - s * 0.06, f, &pose, &random_body(h, true, rng));
    }
    let h = s * (0.44 + 0.12 * rng.uniform() as f32);
    let gap = sig.gap * h;
    let cx = s * (0.42 + 0.16 * rng.uniform() as f32);
    let mirror = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
    let (xa, xb) = (cx - mirror * gap / 2.0, cx + mirror * gap / 2.0);
    let (fa, fb) = (mirror, if sig.b.away { mirror } else { -mirror });
    let (body_a, body_b) = (random_body(h, false, rng), random_body(h, false, rng));
    let (da, db) = if sig.b.posture == Posture::Carried || sig.b.posture == Posture::Raised {
        // The held person is drawn first so the carrier's arms are in front.
        let db = draw_person(&mut cv, xb, ground, fb, &sig.b, &body_b);
        (draw_person(&mut cv, xa, ground, fa, &sig.a, &body_a), db)
    } else {
        let da = draw_person(&mut cv, xa, ground, fa, &sig.a, &body_a);
        (da, draw_person(&mut cv, xb, ground, fb, &sig.b, &body_b))
    };
    if let Some((prop, at)) = sig.prop {
        let mid = |p: Pt, q: Pt| ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0);
        let p = match at {
            PropAt::AgentHand => da.front_hand,
            PropAt::PatientHand => db.front_hand,
            PropAt::Between => mid(da.front_hand, db.front_hand),
            PropAt::Air => {
                let m = mid(da.head, db.head);
                (m.0, m.1 - 0.1 * h)
            }
            PropAt::Table => (cx, ground - 0.28 * h),
            PropAt::AbovePatient => (db.head.0, db.head.1 - 0.16 * h),
        };
        draw_prop(&mut cv, prop, p, 0.14 * h);
    }
    if noise > 0 {
        cv.noise(noise, rng);
    }
    cv.img
}
