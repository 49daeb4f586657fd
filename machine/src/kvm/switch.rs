//! Switching engines under a running guest: `new.set_state(&old.state())`, with the retired
//! count carried over so that device time goes on, and decoded code dropped because the old
//! engine may have written guest memory behind the new one's caches.

use super::plan::{create_engine, Accel, EngineKind, EnginePlan};
use crate::engine::EngineError;
use crate::machine::{Machine, MachineError};
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use nestor_cpu::cpuid::CpuModel;

/// The engine a machine starts on: the plan's first step, else `--accel` (`auto` takes KVM
/// when it is usable here and says why not in the log otherwise).
pub fn initial_engine(accel: Accel, plan: Option<&EnginePlan>) -> Result<EngineKind, EngineError> {
    if let Some(first) = plan.and_then(|p| p.steps.first()) {
        return Ok(first.engine);
    }
    Ok(match accel {
        Accel::Interp => EngineKind::Interp,
        Accel::Kvm => EngineKind::Kvm,
        Accel::Auto => match super::probe() {
            Ok(()) => EngineKind::Kvm,
            Err(e) => {
                tracing::warn!("{e}; using the interpreter");
                EngineKind::Interp
            }
        },
    })
}

/// The CPU model the guest sees: `model` itself when only the interpreter runs; when KVM may
/// run the guest (first engine or a plan step), `model` without the features this host's
/// KVM cannot provide, on every engine, so that a switch never meets state (such as CR4.LA57)
/// that KVM refuses.
pub fn model_for_engines(
    model: &CpuModel,
    first: EngineKind,
    plan: Option<&EnginePlan>,
) -> Result<CpuModel, EngineError> {
    let kvm_steps = plan.is_some_and(|p| p.steps.iter().any(|s| s.engine == EngineKind::Kvm));
    if first != EngineKind::Kvm && !kvm_steps {
        return Ok(*model);
    }
    let kvm = super::open().map_err(|e| EngineError::Failed(e.to_string()))?;
    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| EngineError::Failed(format!("KVM_GET_SUPPORTED_CPUID: {e}")))?;
    let leaf = |function: u32| {
        supported
            .as_slice()
            .iter()
            .find(|e| e.function == function && e.index == 0)
            .map_or([0; 4], |e| [e.eax, e.ebx, e.ecx, e.edx])
    };
    Ok(mask_model(model, leaf(1), leaf(7), leaf(0x8000_0001)))
}

/// `model` with its feature bits ANDed with what KVM reports for leaves 1, 7 and 80000001h.
#[must_use]
pub fn mask_model(model: &CpuModel, l1: [u32; 4], l7: [u32; 4], ext: [u32; 4]) -> CpuModel {
    let mut m = *model;
    m.features_ecx &= l1[2];
    m.features_edx &= l1[3];
    m.leaf7[0] &= l7[1];
    m.leaf7[1] &= l7[2];
    m.leaf7[2] &= l7[3];
    m.ext_ecx &= ext[2];
    m.ext_edx &= ext[3];
    if m.leaf7[1] & nestor_cpu::cpuid::leaf7::ECX_LA57 == 0 {
        m.lin_bits = m.lin_bits.min(48);
    }
    if m.features_ecx & nestor_cpu::cpuid::ecx::XSAVE == 0 {
        m.xcr0_supported = 0;
        m.xsave_ext = 0;
    }
    m
}

impl Machine {
    /// Move the guest to a fresh engine of `kind`; the guest does not notice.
    pub fn switch_engine(&mut self, kind: EngineKind) -> Result<(), MachineError> {
        let state = self.vcpu.state();
        let retired = self.vcpu.retired();
        let mut next = create_engine(
            kind,
            &self.engine_model,
            self.trace,
            &mut self.board.wires.mem,
        )?;
        next.set_state(&state)?;
        next.set_retired(retired);
        let mem = &self.board.wires.mem;
        next.invalidate_code(0, mem.low_ram());
        next.invalidate_code(crate::memory::FOUR_GIB, mem.ram_bytes() - mem.low_ram());
        tracing::info!("engine switch: {} -> {}", self.vcpu.name(), next.name());
        self.vcpu = next;
        Ok(())
    }

    /// Advance the engine plan: switch when a step is over; the budget cap that ends the
    /// current step on time.
    pub(crate) fn follow_plan(&mut self) -> Result<u64, MachineError> {
        loop {
            let Some(plan) = self.plan.as_mut() else {
                return Ok(u64::MAX);
            };
            match plan.next(self.vcpu.as_ref()) {
                Ok(cap) => return Ok(cap),
                Err(kind) => {
                    self.switch_engine(kind)?;
                    if let Some(plan) = self.plan.as_mut() {
                        plan.started(self.vcpu.as_ref());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_cpu::cpuid::{leaf7, NESTOR64};

    #[test]
    fn masking_drops_what_kvm_lacks_and_keeps_the_rest() {
        let all = [u32::MAX; 4];
        assert_eq!(mask_model(&NESTOR64, all, all, all), NESTOR64);
        let mut l7 = all;
        l7[2] &= !leaf7::ECX_LA57;
        let m = mask_model(&NESTOR64, all, l7, all);
        assert_eq!(m.leaf7[1] & leaf7::ECX_LA57, 0);
        assert_eq!(m.lin_bits, 48, "no 57-bit linear addresses without LA57");
        assert_eq!(m.leaf7[1] | leaf7::ECX_LA57, NESTOR64.leaf7[1]);
        assert_eq!(m.features_edx, NESTOR64.features_edx);
    }

    #[test]
    fn interpreter_only_machines_keep_their_model() {
        let m = model_for_engines(&NESTOR64, EngineKind::Interp, None).unwrap();
        assert_eq!(m, NESTOR64);
    }
}
