//! Visual signatures: how the two people of an interaction stand, where their
//! arms point, how far apart they are and which prop they hold. Angles are in
//! degrees: an arm at 0 hangs down, at 90 points at the partner, at 180 up.

/// Objects that people hold or use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prop {
    Trophy,
    Flowers,
    Ball,
    Microphone,
    Camera,
    Document,
    Baton,
    Racket,
    Chessboard,
    Crown,
    Food,
}

/// Background scenes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    Stage,
    Court,
    Ring,
    Office,
    Street,
    Park,
    Gala,
}

impl Scene {
    pub const ALL: [Scene; 7] = [Scene::Stage, Scene::Court, Scene::Ring, Scene::Office, Scene::Street, Scene::Park, Scene::Gala];

    pub fn name(self) -> &'static str {
        match self {
            Scene::Stage => "stage",
            Scene::Court => "court",
            Scene::Ring => "ring",
            Scene::Office => "office",
            Scene::Street => "street",
            Scene::Park => "park",
            Scene::Gala => "gala",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Posture {
    Stand,
    Run,
    Kneel,
    /// Lying on the ground.
    Lie,
    /// Held up horizontally in the partner's arms.
    Carried,
    /// Raised above the ground, upright.
    Raised,
}

/// One arm: shoulder angle and elbow bend (degrees).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arm {
    pub shoulder: f32,
    pub bend: f32,
}

const fn arm(shoulder: f32, bend: f32) -> Arm {
    Arm { shoulder, bend }
}

const DOWN: Arm = arm(10.0, 0.0);

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PersonPose {
    pub posture: Posture,
    /// The arm nearer the partner.
    pub front: Arm,
    pub back: Arm,
    /// Forward lean of the torso (degrees).
    pub lean: f32,
    /// Faces away from the partner.
    pub away: bool,
}

const fn person(posture: Posture, front: Arm, back: Arm, lean: f32) -> PersonPose {
    PersonPose { posture, front, back, lean, away: false }
}

const STAND: PersonPose = person(Posture::Stand, DOWN, DOWN, 0.0);

/// Where a prop is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PropAt {
    /// In the agent's front hand.
    AgentHand,
    /// In the patient's front hand.
    PatientHand,
    /// Between the two front hands (being handed over).
    Between,
    /// In the air between the two people (thrown, kicked).
    Air,
    /// On a table between them.
    Table,
    /// Above the patient's head.
    AbovePatient,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// The agent (the first `_`).
    pub a: PersonPose,
    /// The patient (the second `_`).
    pub b: PersonPose,
    /// Distance between the two bodies, in body heights.
    pub gap: f32,
    pub prop: Option<(Prop, PropAt)>,
    /// Scenes this interaction usually happens in.
    pub scenes: Vec<Scene>,
}

impl Signature {
    fn new(a: PersonPose, b: PersonPose, gap: f32, prop: Option<(Prop, PropAt)>, scenes: &[Scene]) -> Self {
        Signature { a, b, gap, prop, scenes: scenes.to_vec() }
    }

    /// Interactions around an object: handing, throwing, showing, passing, kicking, playing.
    pub fn for_object(gerund: &str, prop: Prop) -> Self {
        use Scene::*;
        let scenes: &[Scene] = match prop {
            Prop::Trophy | Prop::Flowers => &[Stage, Gala],
            Prop::Ball | Prop::Baton | Prop::Racket => &[Court, Park],
            Prop::Microphone | Prop::Camera => &[Stage, Street],
            Prop::Document => &[Office],
            Prop::Chessboard => &[Park, Office],
            Prop::Crown | Prop::Food => &[Gala],
        };
        let reach = person(Posture::Stand, arm(80.0, 0.0), DOWN, 5.0);
        match gerund {
            "handing" => Self::new(reach, reach, 0.55, Some((prop, PropAt::Between)), scenes),
            "throwing" => Self::new(
                person(Posture::Stand, arm(150.0, 20.0), arm(40.0, 0.0), -5.0),
                person(Posture::Stand, arm(120.0, 0.0), arm(120.0, 0.0), 0.0),
                1.3,
                Some((prop, PropAt::Air)),
                scenes,
            ),
            "showing" => {
                Self::new(person(Posture::Stand, arm(135.0, -30.0), DOWN, 0.0), person(Posture::Stand, arm(30.0, 60.0), DOWN, 8.0), 0.7, Some((prop, PropAt::AgentHand)), scenes)
            }
            "passing" => Self::new(
                person(Posture::Run, arm(70.0, 10.0), arm(20.0, 0.0), 15.0),
                person(Posture::Run, arm(70.0, 10.0), arm(-20.0, 0.0), 10.0),
                0.5,
                Some((prop, PropAt::Between)),
                scenes,
            ),
            "kicking" => Self::new(
                person(Posture::Run, arm(40.0, 0.0), arm(-30.0, 0.0), -10.0),
                person(Posture::Stand, arm(45.0, 0.0), arm(45.0, 0.0), 0.0),
                1.2,
                Some((prop, PropAt::Air)),
                scenes,
            ),
            // playing
            _ => match prop {
                Prop::Chessboard => {
                    Self::new(person(Posture::Kneel, arm(70.0, 40.0), DOWN, 10.0), person(Posture::Kneel, arm(60.0, 60.0), DOWN, 10.0), 0.8, Some((prop, PropAt::Table)), scenes)
                }
                Prop::Racket => Self::new(
                    person(Posture::Run, arm(110.0, 0.0), arm(30.0, 0.0), 5.0),
                    person(Posture::Run, arm(110.0, 0.0), arm(30.0, 0.0), 5.0),
                    1.6,
                    Some((prop, PropAt::AgentHand)),
                    scenes,
                ),
                _ => Self::new(
                    person(Posture::Run, arm(60.0, 30.0), arm(20.0, 0.0), 10.0),
                    person(Posture::Stand, arm(160.0, 0.0), arm(160.0, 0.0), 0.0),
                    0.6,
                    Some((prop, PropAt::AgentHand)),
                    scenes,
                ),
            },
        }
    }

    /// Interactions whose object is the other person.
    pub fn for_person(gerund: &str) -> Self {
        use Posture::*;
        use Scene::*;
        let p = person;
        match gerund {
            "shaking" => Self::new(p(Stand, arm(60.0, 20.0), DOWN, 0.0), p(Stand, arm(60.0, 20.0), DOWN, 0.0), 0.45, None, &[Office, Stage, Gala]),
            "hugging" => Self::new(p(Stand, arm(95.0, 70.0), arm(95.0, 70.0), 10.0), p(Stand, arm(95.0, 70.0), arm(95.0, 70.0), 10.0), 0.3, None, &[Street, Park, Court]),
            "carrying" => Self::new(p(Stand, arm(90.0, 0.0), arm(90.0, 0.0), -5.0), p(Carried, arm(30.0, 0.0), arm(60.0, 0.0), 0.0), 0.3, None, &[Street, Park]),
            "chasing" => Self::new(
                p(Run, arm(120.0, 0.0), arm(-40.0, 0.0), 25.0),
                PersonPose { away: true, ..p(Run, arm(50.0, 40.0), arm(-50.0, 30.0), 25.0) },
                1.4,
                None,
                &[Park, Street, Court],
            ),
            "interviewing" => {
                Self::new(p(Stand, arm(75.0, 45.0), DOWN, 0.0), p(Stand, arm(20.0, 100.0), DOWN, 0.0), 0.6, Some((Prop::Microphone, PropAt::AgentHand)), &[Street, Stage])
            }
            "helping" => Self::new(p(Stand, arm(45.0, 0.0), DOWN, 30.0), p(Lie, arm(150.0, 0.0), DOWN, 0.0), 0.35, None, &[Court, Street, Park]),
            "photographing" => Self::new(
                p(Kneel, arm(60.0, 100.0), arm(70.0, 90.0), 0.0),
                p(Stand, arm(150.0, 0.0), arm(150.0, 0.0), 0.0),
                1.3,
                Some((Prop::Camera, PropAt::AgentHand)),
                &[Street, Gala, Stage],
            ),
            "kissing" => Self::new(p(Stand, arm(40.0, 60.0), DOWN, 25.0), p(Stand, arm(30.0, 40.0), DOWN, 20.0), 0.32, None, &[Gala, Park]),
            "dancing" => Self::new(p(Stand, arm(130.0, 30.0), arm(60.0, 80.0), -5.0), p(Stand, arm(130.0, 30.0), arm(-60.0, 0.0), -5.0), 0.45, None, &[Gala, Stage]),
            "boxing" => Self::new(p(Stand, arm(90.0, 0.0), arm(70.0, 100.0), 15.0), p(Stand, arm(60.0, 110.0), arm(80.0, 100.0), -15.0), 0.55, None, &[Ring]),
            "wrestling" => Self::new(p(Kneel, arm(100.0, 20.0), arm(80.0, 40.0), 45.0), p(Kneel, arm(100.0, 20.0), arm(80.0, 40.0), 45.0), 0.3, None, &[Ring]),
            "tackling" => Self::new(p(Run, arm(100.0, 0.0), arm(80.0, 0.0), 60.0), p(Run, arm(170.0, 0.0), arm(-30.0, 0.0), -35.0), 0.35, None, &[Court, Park]),
            "high-fiving" => Self::new(p(Stand, arm(150.0, -10.0), DOWN, 0.0), p(Stand, arm(150.0, -10.0), DOWN, 0.0), 0.5, None, &[Court, Park, Office]),
            "pushing" => Self::new(p(Run, arm(90.0, 0.0), arm(90.0, 0.0), 35.0), p(Stand, arm(130.0, 0.0), arm(-40.0, 0.0), -30.0), 0.42, None, &[Street, Court]),
            "pulling" => Self::new(p(Stand, arm(70.0, 0.0), arm(70.0, 0.0), -30.0), p(Run, arm(80.0, 0.0), arm(-30.0, 0.0), 30.0), 0.6, None, &[Street, Park]),
            "comforting" => Self::new(p(Stand, arm(100.0, 80.0), DOWN, 15.0), p(Kneel, arm(150.0, 140.0), arm(150.0, 140.0), 30.0), 0.3, None, &[Street, Park, Office]),
            "arguing" => Self::new(p(Stand, arm(110.0, -20.0), arm(-45.0, 90.0), 10.0), p(Stand, arm(120.0, -20.0), arm(-45.0, 90.0), 10.0), 0.75, None, &[Office, Street]),
            "feeding" => Self::new(p(Stand, arm(80.0, 45.0), DOWN, 0.0), p(Kneel, DOWN, DOWN, 0.0), 0.4, Some((Prop::Food, PropAt::AgentHand)), &[Gala, Park]),
            "lifting" => Self::new(p(Stand, arm(150.0, 0.0), arm(150.0, 0.0), -10.0), p(Raised, arm(160.0, 0.0), arm(160.0, 0.0), 0.0), 0.2, None, &[Court, Stage]),
            "teaching" => Self::new(p(Stand, arm(120.0, 30.0), DOWN, 0.0), p(Kneel, DOWN, DOWN, 0.0), 0.9, Some((Prop::Document, PropAt::PatientHand)), &[Office]),
            "congratulating" => {
                Self::new(p(Stand, arm(100.0, 40.0), DOWN, 10.0), p(Stand, arm(165.0, 0.0), arm(165.0, 0.0), 0.0), 0.4, Some((Prop::Trophy, PropAt::PatientHand)), &[Stage, Court])
            }
            "pointing" => Self::new(p(Stand, arm(95.0, 0.0), DOWN, 0.0), p(Stand, DOWN, DOWN, 0.0), 1.5, None, &[Street, Office]),
            "waving" => Self::new(p(Stand, arm(165.0, -25.0), DOWN, 0.0), p(Stand, arm(165.0, -25.0), DOWN, 0.0), 1.6, None, &[Street, Park]),
            "crowning" => Self::new(p(Stand, arm(150.0, 20.0), arm(150.0, 20.0), 10.0), p(Kneel, DOWN, DOWN, 0.0), 0.35, Some((Prop::Crown, PropAt::AbovePatient)), &[Gala, Stage]),
            "holding" => Self::new(p(Stand, arm(35.0, 0.0), DOWN, 0.0), PersonPose { away: true, ..p(Stand, arm(-35.0, 0.0), DOWN, 0.0) }, 0.35, None, &[Park, Street]),
            _ => Self::new(STAND, STAND, 0.8, None, &[]),
        }
    }
}
