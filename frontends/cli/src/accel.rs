//! `--accel` and `--engine-plan`: which engine runs the guest, checked before the machine is
//! built so that an unusable /dev/kvm is one clear line, not a failure deep in a run.

use clap::Args;
use nestor_machine::kvm::{Accel, EngineKind, EnginePlan};
use nestor_machine::MachineConfig;

#[derive(Args)]
pub struct AccelArgs {
    /// Execution engine: interp, kvm, or auto (KVM when /dev/kvm is usable, else the
    /// interpreter).
    #[arg(long, value_name = "ENGINE", default_value = "interp", value_parser = parse_accel)]
    pub accel: Accel,
    /// Switch engines at run time, e.g. `interp:300000000i,kvm:5000x,interp`: i counts
    /// retired instructions, x counts VM exits; the last step runs to the end.
    #[arg(long, value_name = "PLAN", value_parser = parse_plan)]
    pub engine_plan: Option<EnginePlan>,
}

fn parse_accel(s: &str) -> Result<Accel, String> {
    s.parse()
}

fn parse_plan(s: &str) -> Result<EnginePlan, String> {
    s.parse()
}

/// Resolve the engine choice into `config`: `auto` falls back to the interpreter and says
/// so on stderr; `kvm` (or a plan with a KVM step) where KVM is unusable is an error.
pub fn apply(args: &AccelArgs, config: &mut MachineConfig) -> anyhow::Result<()> {
    let kvm = nestor_machine::kvm::probe();
    if let Some(plan) = &args.engine_plan {
        if plan.steps.iter().any(|s| s.engine == EngineKind::Kvm) {
            if let Err(e) = &kvm {
                anyhow::bail!("--engine-plan has KVM steps, but {e}");
            }
        }
        config.engine_plan = Some(plan.clone());
    }
    config.accel = match (args.accel, kvm) {
        (Accel::Kvm, Err(e)) => anyhow::bail!("--accel kvm: {e}"),
        (Accel::Auto, Err(e)) => {
            eprintln!("nestor: {e}; --accel auto falls back to the interpreter");
            Accel::Interp
        }
        (Accel::Auto, Ok(())) => Accel::Kvm,
        (accel, _) => accel,
    };
    Ok(())
}
