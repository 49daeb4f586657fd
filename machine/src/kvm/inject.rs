//! Interrupt delivery from Nestor's interrupt controllers into a KVM vCPU without an
//! in-kernel irqchip: KVM_INTERRUPT when the guest can take one, else an interrupt-window
//! exit requested so that we try again as soon as it can.

use kvm_bindings::kvm_interrupt;
use kvm_ioctls::VcpuFd;
use nestor_cpu::Bus;

/// `_IOW(KVMIO, 0x86, struct kvm_interrupt)`; kvm-ioctls does not wrap it.
const KVM_INTERRUPT: std::os::raw::c_ulong = 0x4004_ae86;

/// Queue external interrupt `vector` for the next entry.
fn queue(fd: &VcpuFd, vector: u8) -> std::io::Result<()> {
    let irq = kvm_interrupt {
        irq: u32::from(vector),
    };
    // SAFETY: KVM_INTERRUPT reads one `kvm_interrupt` from the pointer, which lives across the
    // call; the fd is a vCPU fd.
    let r = unsafe { vmm_sys_util::ioctl::ioctl_with_ref(fd, KVM_INTERRUPT, &irq) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// What happened at this entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// No interrupt is pending.
    Idle,
    /// An interrupt was acknowledged and queued: it is taken at this entry.
    Queued(u8),
    /// One is pending but the guest cannot take it now: an interrupt-window exit is armed.
    Waiting,
}

/// Offer the pending interrupt, if any, to the vCPU before KVM_RUN.
pub fn offer(fd: &mut VcpuFd, bus: &mut dyn Bus) -> std::io::Result<Delivery> {
    if !bus.interrupt_pending() {
        fd.get_kvm_run().request_interrupt_window = 0;
        return Ok(Delivery::Idle);
    }
    let run = fd.get_kvm_run();
    // Both are as of the last exit; a stale "no" only costs one window exit.
    if run.ready_for_interrupt_injection != 0 && run.if_flag != 0 {
        run.request_interrupt_window = 0;
        let vector = bus.interrupt_ack();
        queue(fd, vector)?;
        Ok(Delivery::Queued(vector))
    } else {
        run.request_interrupt_window = 1;
        Ok(Delivery::Waiting)
    }
}
