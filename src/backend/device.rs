//! Which device a command computes on, as the `--device` flag spells it.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Device::Cuda(n)),
                _ => Err(format!("unknown device `{s}` (expected cpu, cuda or cuda:N)")),
            },
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Runs `$body` with `$be` bound to the backend `$device` names, computing in
/// `$dtype`: the CPU reference (f32 only), or a freshly opened CUDA device
/// (opening errors propagate with `?`). The body is compiled once per
/// backend, so it may call generic code:
/// `on_device!(device, dtype, |be| train(be, &args))`. With `profiled,`
/// before the closure, the backend is wrapped in `backend::profile::Profiled`
/// (every op timed).
#[macro_export]
macro_rules! on_device {
    ($device:expr, $dtype:expr, profiled, |$be:ident| $body:expr) => {
        match $device {
            $crate::backend::Device::Cpu => {
                let $be = &$crate::backend::profile::Profiled::new($crate::backend::cpu::Cpu::for_dtype($dtype)?);
                $body
            }
            $crate::backend::Device::Cuda(ordinal) => {
                let $be = &$crate::backend::profile::Profiled::new($crate::backend::cuda::Cuda::new(ordinal, $dtype)?);
                $body
            }
        }
    };
    ($device:expr, $dtype:expr, |$be:ident| $body:expr) => {
        match $device {
            $crate::backend::Device::Cpu => {
                let $be = &$crate::backend::cpu::Cpu::for_dtype($dtype)?;
                $body
            }
            $crate::backend::Device::Cuda(ordinal) => {
                let $be = &$crate::backend::cuda::Cuda::new(ordinal, $dtype)?;
                $body
            }
        }
    };
}
