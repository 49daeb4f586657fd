//! Engine selection: `--accel interp|kvm|auto` and engine plans such as
//! `interp:300000000i,kvm:5000x,interp` (run the interpreter for 300 million retired
//! instructions, KVM for 5000 VM exits, then the interpreter to the end).

use crate::engine::{EngineError, Interpreter, Vcpu};
use crate::memory::GuestMemory;
use nestor_cpu::cpuid::CpuModel;

/// An engine a machine can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Interp,
    Kvm,
}

/// What `--accel` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accel {
    #[default]
    Interp,
    Kvm,
    /// KVM when it is usable here, else the interpreter.
    Auto,
}

impl std::str::FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "interp" => Ok(Self::Interp),
            "kvm" => Ok(Self::Kvm),
            "auto" => Ok(Self::Auto),
            _ => Err(format!(
                "unknown accelerator '{s}' (known: interp, kvm, auto)"
            )),
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "interp" => Ok(Self::Interp),
            "kvm" => Ok(Self::Kvm),
            _ => Err(format!("unknown engine '{s}' (known: interp, kvm)")),
        }
    }
}

/// How long a plan step lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// Retired instructions (under KVM: the exit-based estimate of `retired()`).
    Insns(u64),
    /// VM exits (KVM only).
    Exits(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanStep {
    pub engine: EngineKind,
    /// `None` on the last step: it runs to the end.
    pub amount: Option<Amount>,
}

/// A sequence of engines to run the guest on, switching at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnginePlan {
    pub steps: Vec<PlanStep>,
}

impl std::str::FromStr for EnginePlan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let mut steps = Vec::new();
        for (n, part) in parts.iter().enumerate() {
            let last = n + 1 == parts.len();
            let (name, amount) = match part.split_once(':') {
                Some((name, amount)) => (name, Some(amount)),
                None => (*part, None),
            };
            let engine: EngineKind = name.parse().map_err(|e| format!("step {}: {e}", n + 1))?;
            let amount = match (amount, last) {
                (None, true) => None,
                (None, false) => {
                    return Err(format!(
                        "step {} ('{part}') needs an amount such as {name}:5000x; only the last step runs to the end",
                        n + 1
                    ))
                }
                (Some(a), false) => Some(parse_amount(a).map_err(|e| format!("step {}: {e}", n + 1))?),
                (Some(_), true) => {
                    return Err(format!(
                        "the last step ('{part}') runs to the end and takes no amount"
                    ))
                }
            };
            if engine == EngineKind::Interp && matches!(amount, Some(Amount::Exits(_))) {
                return Err(format!(
                    "step {}: the interpreter makes no VM exits; count it in instructions (i)",
                    n + 1
                ));
            }
            steps.push(PlanStep { engine, amount });
        }
        Ok(Self { steps })
    }
}

fn parse_amount(a: &str) -> Result<Amount, String> {
    let (digits, unit) = a.split_at(a.len().saturating_sub(1));
    let n: u64 = digits
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{a}' is not a count such as 300000000i or 5000x"))?;
    match unit {
        "i" => Ok(Amount::Insns(n)),
        "x" => Ok(Amount::Exits(n)),
        _ => Err(format!(
            "'{a}' needs a unit: i (retired instructions) or x (VM exits)"
        )),
    }
}

/// A fresh engine of `kind` over `mem`, at power-on state.
pub fn create_engine(
    kind: EngineKind,
    model: &CpuModel,
    trace: bool,
    mem: &mut GuestMemory,
) -> Result<Box<dyn Vcpu>, EngineError> {
    Ok(match kind {
        EngineKind::Interp => Box::new(Interpreter::new(model, trace)),
        EngineKind::Kvm => Box::new(
            super::KvmVcpu::new(mem, model).map_err(|e| EngineError::Failed(e.to_string()))?,
        ),
    })
}

/// Where a running plan is.
#[derive(Clone, Debug)]
pub struct PlanCursor {
    plan: EnginePlan,
    step: usize,
    /// `retired()` and `exits()` when the current step started.
    start_retired: u64,
    start_exits: u64,
}

impl PlanCursor {
    #[must_use]
    pub fn new(plan: EnginePlan) -> Self {
        Self {
            plan,
            step: 0,
            start_retired: 0,
            start_exits: 0,
        }
    }

    /// The engine of the current step.
    #[must_use]
    pub fn engine(&self) -> Option<EngineKind> {
        self.plan.steps.get(self.step).map(|s| s.engine)
    }

    /// Budget cap for the next run so that the step ends on time (`u64::MAX`: none), or the
    /// engine to switch to now that the step is over.
    pub fn next(&mut self, vcpu: &dyn Vcpu) -> Result<u64, EngineKind> {
        let Some(step) = self.plan.steps.get(self.step) else {
            return Ok(u64::MAX);
        };
        let left = match step.amount {
            None => return Ok(u64::MAX),
            Some(Amount::Insns(n)) => n.saturating_sub(vcpu.retired() - self.start_retired),
            Some(Amount::Exits(n)) => n
                .saturating_sub(vcpu.exits() - self.start_exits)
                .saturating_mul(super::INSNS_PER_EXIT),
        };
        if left > 0 {
            return Ok(left);
        }
        self.step += 1;
        match self.plan.steps.get(self.step) {
            Some(next) => Err(next.engine),
            None => Ok(u64::MAX),
        }
    }

    /// The engine for the current step is now running (counts restart).
    pub fn started(&mut self, vcpu: &dyn Vcpu) {
        self.start_retired = vcpu.retired();
        self.start_exits = vcpu.exits();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parses_the_issue_example() {
        let p: EnginePlan = "interp:300000000i,kvm:5000x,interp".parse().unwrap();
        assert_eq!(
            p.steps,
            vec![
                PlanStep {
                    engine: EngineKind::Interp,
                    amount: Some(Amount::Insns(300_000_000))
                },
                PlanStep {
                    engine: EngineKind::Kvm,
                    amount: Some(Amount::Exits(5000))
                },
                PlanStep {
                    engine: EngineKind::Interp,
                    amount: None
                },
            ]
        );
        let p: EnginePlan = "kvm".parse().unwrap();
        assert_eq!(p.steps.len(), 1);
    }

    #[test]
    fn plan_errors_are_one_line() {
        for bad in [
            "interp:5x,kvm",
            "interp,kvm",
            "interp:10i,kvm:5x",
            "jit:10i,kvm",
            "interp:10q,kvm",
            "interp:abci,kvm",
            "",
            "interp:,kvm",
        ] {
            let e = bad.parse::<EnginePlan>().expect_err(bad);
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
    }

    #[test]
    fn accel_parses() {
        assert_eq!("auto".parse::<Accel>(), Ok(Accel::Auto));
        assert!("tcg".parse::<Accel>().is_err());
    }

    /// A stand-in engine whose counters the test sets.
    struct Counter(u64, u64);
    impl Vcpu for Counter {
        fn run(
            &mut self,
            _: &mut dyn nestor_cpu::Bus,
            _: u64,
        ) -> Result<crate::engine::VcpuExit, EngineError> {
            unreachable!()
        }
        fn state(&self) -> nestor_cpu::CpuState {
            nestor_cpu::CpuState::power_on()
        }
        fn set_state(&mut self, _: &nestor_cpu::CpuState) -> Result<(), EngineError> {
            Ok(())
        }
        fn retired(&self) -> u64 {
            self.0
        }
        fn reset(&mut self) {}
        fn inject_nmi(&mut self) {}
        fn invalidate_code(&mut self, _: u64, _: u64) {}
        fn set_retired(&mut self, r: u64) {
            self.0 = r;
        }
        fn exits(&self) -> u64 {
            self.1
        }
        fn name(&self) -> &'static str {
            "counter"
        }
    }

    #[test]
    fn cursor_caps_budgets_and_switches() {
        let mut c = PlanCursor::new("interp:100i,kvm:3x,interp".parse().unwrap());
        let mut v = Counter(0, 0);
        c.started(&v);
        assert_eq!(c.next(&v), Ok(100));
        v.0 = 100;
        assert_eq!(c.next(&v), Err(EngineKind::Kvm));
        c.started(&v);
        assert_eq!(c.next(&v), Ok(3 * super::super::INSNS_PER_EXIT));
        v.1 = 3;
        assert_eq!(c.next(&v), Err(EngineKind::Interp));
        c.started(&v);
        assert_eq!(c.next(&v), Ok(u64::MAX));
    }
}
