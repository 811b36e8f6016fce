//! The result of one parity run: one line per checked tensor, grouped, and the
//! closing `parity: N passed, M failed` line.

use std::fmt;

#[derive(Clone, Debug)]
pub struct Check {
    pub group: &'static str,
    pub name: String,
    pub max_abs: f64,
    /// The group's error figure (or the share of mismatching ids).
    pub error: f64,
    pub tolerance: f64,
    pub passed: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.passed).count()
    }
    pub fn failed(&self) -> usize {
        self.checks.len() - self.passed()
    }
    pub fn ok(&self) -> bool {
        self.failed() == 0 && !self.checks.is_empty()
    }

    /// Compares floats with `error = max|a−b| / denom`.
    pub fn floats(&mut self, group: &'static str, name: &str, got: &[f32], want: &[f32], denom: f64, tolerance: f64) {
        let max_abs = if got.len() == want.len() { got.iter().zip(want).map(|(&a, &b)| (a as f64 - b as f64).abs()).fold(0.0, f64::max) } else { f64::INFINITY };
        let error = max_abs / denom.max(f64::MIN_POSITIVE);
        self.checks.push(Check { group, name: name.into(), max_abs, error, tolerance, passed: error < tolerance && error.is_finite() });
    }

    /// Compares ids; passes when the share of equal positions reaches `min_match`.
    pub fn ids(&mut self, group: &'static str, name: &str, got: &[i64], want: &[i64], min_match: f64) {
        let same = got.iter().zip(want).filter(|(a, b)| a == b).count();
        let share = if got.len() == want.len() && !want.is_empty() { same as f64 / want.len() as f64 } else { 0.0 };
        let mismatched = want.len().max(got.len()) - same;
        self.checks.push(Check { group, name: name.into(), max_abs: mismatched as f64, error: 1.0 - share, tolerance: 1.0 - min_match, passed: share >= min_match });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut group = "";
        for c in &self.checks {
            if c.group != group {
                writeln!(f, "[{}]", c.group)?;
                group = c.group;
            }
            let verdict = if c.passed { "ok" } else { "FAIL" };
            if matches!(c.group, "generation" | "beams" | "tokens") {
                writeln!(f, "  {:<48} mismatched {:>4}  {verdict}", c.name, c.max_abs)?;
            } else {
                writeln!(f, "  {:<48} max|a-b| {:.3e}  err {:.3e} (tol {:e})  {verdict}", c.name, c.max_abs, c.error, c.tolerance)?;
            }
        }
        write!(f, "parity: {} passed, {} failed", self.passed(), self.failed())
    }
}
