//! The local APIC of one vCPU, as on a P6/Pentium 4-class processor in xAPIC mode.
//!
//! The register file is addressed by offset (the 4 KiB MMIO window at the APIC base, 0xFEE00000
//! after reset; x2APIC MSR 0x800 + n will map to offset n << 4): ID, version, TPR, APR, PPR,
//! EOI, LDR/DFR, SVR, ISR/TMR/IRR, ESR, ICR, the six LVT entries (timer, thermal, performance,
//! LINT0, LINT1, error) and the timer in one-shot, periodic and TSC-deadline modes, computed
//! from virtual time.
//!
//! The machine keeps each local APIC as a concrete type beside its vCPU and wires it so:
//! - interrupt messages from the IOAPIC (and IPIs from [`Lapic::take_ipis`]) go to
//!   [`Lapic::accept`] when [`Lapic::matches`] says the message is for this APIC;
//! - LINT0 follows the 8259's INT output ([`Lapic::set_lint`]); an acknowledged ExtINT
//!   ([`AckResult::ExtInt`]) asks the 8259 for the vector. LINT1 is the NMI pin;
//! - the CPU asks [`Lapic::has_interrupt`] and takes interrupts with [`Lapic::acknowledge`];
//! - level-triggered EOIs ([`Lapic::take_eoi_broadcasts`]) go to the IOAPIC;
//! - IA32_APIC_BASE, IA32_TSC_DEADLINE and CR8 reach [`Lapic::set_apic_base`],
//!   [`Lapic::set_tsc_deadline`] and [`Lapic::set_tpr`].
//!
//! A hardware-disabled (IA32_APIC_BASE bit 11 clear) or software-disabled (SVR bit 8 clear)
//! APIC passes the 8259 through LINT0 and NMI through LINT1, like a PC in virtual wire mode.
//!
//! Pin levels are logical: `true` is an asserted request whatever the polarity bit says.

mod message;
mod regs;
#[cfg(test)]
mod tests;
mod timer;

pub use message::{
    ApicMessage, DeliveryMode, DestinationMode, OutgoingIpi, StartupEvent, BROADCAST,
};
pub use regs::{esr, reg, VectorSet, SVR_ENABLE, VERSION};
pub use timer::{tsc_at, tsc_time, TimerState, BUS_HZ};

use nestor_device::{
    restore_state, save_state, ConfigError, Device, DeviceConfig, DeviceContext, MmioRange,
    PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`LapicState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

/// The APIC base after reset.
pub const DEFAULT_BASE: u64 = 0xfee0_0000;
/// Size of the MMIO window.
pub const WINDOW_LEN: u64 = 0x1000;
/// IA32_APIC_BASE.
pub const APIC_BASE_MSR: u32 = 0x1b;
/// IA32_TSC_DEADLINE.
pub const TSC_DEADLINE_MSR: u32 = 0x6e0;

/// Bits of IA32_APIC_BASE.
pub mod base {
    /// This processor is the bootstrap processor (read-only).
    pub const BSP: u64 = 1 << 8;
    /// x2APIC mode (not offered: writing it is refused).
    pub const EXTD: u64 = 1 << 10;
    /// APIC global enable.
    pub const ENABLE: u64 = 1 << 11;
    /// The window's physical address (bits 12..52).
    pub const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
}

/// Bits of LVT entries.
pub mod lvt {
    pub const MASKED: u32 = 1 << 16;
    pub const LEVEL: u32 = 1 << 15;
    pub const REMOTE_IRR: u32 = 1 << 14;
    pub const TIMER_MODE_SHIFT: u32 = 17;
    pub const TIMER_ONE_SHOT: u32 = 0;
    pub const TIMER_PERIODIC: u32 = 1;
    pub const TIMER_TSC_DEADLINE: u32 = 2;
    /// The value after reset: masked, everything else zero.
    pub const RESET: u32 = MASKED;
}

/// Bound on the queues the machine drains (IPIs, start-up events): a guest that floods them
/// between two drains loses the excess instead of growing host memory.
const MAX_QUEUE: usize = 256;

/// Plugin descriptor. Options: `id` (initial APIC ID, 0..=254, default 0), `bsp` (1 if this
/// is the bootstrap processor, default 1).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "lapic",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    config.reject_unknown(&["id", "bsp"])?;
    let id = config.number_in("id", 0, 0, 254)? as u8;
    let bsp = config.number_in("bsp", 1, 0, 1)? == 1;
    Ok(Box::new(Lapic::new(id, bsp)))
}

/// Guest-visible state of one local APIC.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LapicState {
    /// IA32_APIC_BASE.
    pub apic_base: u64,
    /// ID register (the APIC ID in bits 24-31).
    pub id: u32,
    pub tpr: u8,
    pub ldr: u32,
    pub dfr: u32,
    pub svr: u32,
    pub isr: VectorSet,
    pub tmr: VectorSet,
    pub irr: VectorSet,
    /// ESR as the guest reads it (latched by the last ESR write).
    pub esr: u32,
    /// Errors since the last ESR write.
    pub esr_pending: u32,
    pub icr_low: u32,
    pub icr_high: u32,
    pub lvt_timer: u32,
    pub lvt_thermal: u32,
    pub lvt_perf: u32,
    pub lvt_lint0: u32,
    pub lvt_lint1: u32,
    pub lvt_error: u32,
    pub timer: TimerState,
    /// TSC rate and value at virtual time 0, as the machine last set them.
    pub tsc_hz: u64,
    pub tsc_offset: u64,
    /// Levels of the LINT0/LINT1 pins (board wires).
    pub lint0: bool,
    pub lint1: bool,
    /// An NMI is latched for the CPU.
    pub nmi_pending: bool,
    /// An SMI is latched for the machine.
    pub smi_pending: bool,
    /// An ExtINT message (from the IOAPIC) waits for its acknowledge cycle.
    pub extint_pending: bool,
    /// Level-triggered vectors retired by EOI, not yet passed to the IOAPICs.
    pub eoi_broadcasts: Vec<u8>,
    /// IPIs sent, not yet routed by the machine.
    pub outgoing: Vec<OutgoingIpi>,
    /// INIT/SIPI received, not yet taken by the machine.
    pub startup_events: Vec<StartupEvent>,
}

impl LapicState {
    /// The power-on state of the APIC with ID `id`.
    #[must_use]
    pub fn power_on(id: u8, bsp: bool) -> Self {
        Self {
            apic_base: DEFAULT_BASE | base::ENABLE | if bsp { base::BSP } else { 0 },
            id: u32::from(id) << 24,
            tpr: 0,
            ldr: 0,
            dfr: u32::MAX,
            svr: 0xff,
            isr: VectorSet::default(),
            tmr: VectorSet::default(),
            irr: VectorSet::default(),
            esr: 0,
            esr_pending: 0,
            icr_low: 0,
            icr_high: 0,
            lvt_timer: lvt::RESET,
            lvt_thermal: lvt::RESET,
            lvt_perf: lvt::RESET,
            lvt_lint0: lvt::RESET,
            lvt_lint1: lvt::RESET,
            lvt_error: lvt::RESET,
            timer: TimerState::default(),
            tsc_hz: 0,
            tsc_offset: 0,
            lint0: false,
            lint1: false,
            nmi_pending: false,
            smi_pending: false,
            extint_pending: false,
            eoi_broadcasts: Vec::new(),
            outgoing: Vec::new(),
            startup_events: Vec::new(),
        }
    }
}

/// What the APIC asks of the CPU, most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptKind {
    /// Non-maskable interrupt (taken whatever RFLAGS.IF says).
    Nmi,
    /// A fixed vector whose priority class beats the PPR.
    Fixed(u8),
    /// The 8259 (through LINT0 or an ExtINT message) wants an acknowledge cycle.
    ExtInt,
}

/// The outcome of an interrupt acknowledge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckResult {
    /// Deliver this vector. It is now in service, unless it is the spurious vector (answered
    /// when nothing deliverable was left), which needs no EOI.
    Vector(u8),
    /// Run the 8259's acknowledge cycle for the vector.
    ExtInt,
    /// Deliver an NMI (vector 2).
    Nmi,
}

/// A write to IA32_APIC_BASE that sets reserved bits (or x2APIC mode): the CPU raises #GP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidApicBase;

/// One local APIC.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::Device;
/// use nestor_lapic::{reg, AckResult, ApicMessage, Lapic, DEFAULT_BASE};
///
/// let mut apic = Lapic::new(0, true);
/// let mut ctx = FakeContext::new();
/// apic.mmio_write(DEFAULT_BASE + u64::from(reg::SVR), &0x1ffu32.to_le_bytes(), &mut ctx);
/// let message = ApicMessage::fixed(0x31, 0);
/// assert!(apic.matches(&message));
/// apic.accept(message);
/// assert_eq!(apic.acknowledge(), AckResult::Vector(0x31));
/// apic.mmio_write(DEFAULT_BASE + u64::from(reg::EOI), &0u32.to_le_bytes(), &mut ctx);
/// assert_eq!(apic.has_interrupt(), None);
/// ```
pub struct Lapic {
    state: LapicState,
    name: String,
    initial_id: u8,
    bsp: bool,
}

impl Lapic {
    /// A local APIC in its power-on state: hardware-enabled at 0xFEE00000, software-disabled.
    #[must_use]
    pub fn new(id: u8, bsp: bool) -> Self {
        Self {
            state: LapicState::power_on(id, bsp),
            name: format!("lapic@{id}"),
            initial_id: id,
            bsp,
        }
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &LapicState {
        &self.state
    }

    /// The APIC ID as the ID register holds it now.
    #[must_use]
    pub fn id(&self) -> u8 {
        (self.state.id >> 24) as u8
    }

    /// IA32_APIC_BASE bit 11.
    #[must_use]
    pub fn hardware_enabled(&self) -> bool {
        self.state.apic_base & base::ENABLE != 0
    }

    /// SVR bit 8.
    #[must_use]
    pub fn software_enabled(&self) -> bool {
        self.state.svr & SVR_ENABLE != 0
    }

    fn enabled(&self) -> bool {
        self.hardware_enabled() && self.software_enabled()
    }

    // ----- APIC bus -----

    /// Whether `message` is addressed to this APIC (physical ID or broadcast, logical flat or
    /// cluster model). A hardware-disabled APIC is not on the bus.
    #[must_use]
    pub fn matches(&self, message: &ApicMessage) -> bool {
        if !self.hardware_enabled() {
            return false;
        }
        match message.dest_mode {
            DestinationMode::Physical => {
                message.dest == BROADCAST || message.dest == u32::from(self.id())
            }
            DestinationMode::Logical => {
                let dest = message.dest as u8;
                let ldr = (self.state.ldr >> 24) as u8;
                if self.state.dfr >> 28 == 0xf {
                    dest & ldr != 0
                } else {
                    let cluster = dest >> 4;
                    (cluster == 0xf || cluster == ldr >> 4) && dest & ldr & 0xf != 0
                }
            }
        }
    }

    /// Take a message addressed to this APIC (the machine checked [`Lapic::matches`] and, for
    /// lowest-priority delivery, chose this APIC). Fixed vectors are ignored while the APIC is
    /// software-disabled; NMI, SMI, INIT, SIPI and ExtINT are always taken.
    pub fn accept(&mut self, message: ApicMessage) {
        if !self.hardware_enabled() {
            return;
        }
        match message.delivery_mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                if self.software_enabled() {
                    self.accept_vector(message.vector, message.level_triggered);
                }
            }
            DeliveryMode::Smi => self.state.smi_pending = true,
            DeliveryMode::Nmi => self.state.nmi_pending = true,
            DeliveryMode::Init => self.push_startup(StartupEvent::Init),
            DeliveryMode::StartUp => self.push_startup(StartupEvent::StartUp(message.vector)),
            DeliveryMode::ExtInt => self.state.extint_pending = true,
        }
    }

    /// Set a vector in IRR (vectors 0-15 are illegal: an error instead).
    fn accept_vector(&mut self, v: u8, level: bool) {
        if v < 16 {
            self.record_error(esr::RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        let s = &mut self.state;
        s.irr.set(v);
        if level {
            s.tmr.set(v);
        } else {
            s.tmr.clear(v);
        }
    }

    /// IPIs sent through the ICR since the last call, for the machine to route (see
    /// [`OutgoingIpi`]). The "self" shorthand is delivered here directly.
    pub fn take_ipis(&mut self) -> Vec<OutgoingIpi> {
        std::mem::take(&mut self.state.outgoing)
    }

    /// Level-triggered vectors retired by EOI since the last call: the machine passes each to
    /// the IOAPIC's `end_of_interrupt`.
    pub fn take_eoi_broadcasts(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.state.eoi_broadcasts)
    }

    /// INIT and start-up IPIs received since the last call.
    pub fn take_startup_events(&mut self) -> Vec<StartupEvent> {
        std::mem::take(&mut self.state.startup_events)
    }

    /// Whether an SMI arrived since the last call.
    pub fn take_smi(&mut self) -> bool {
        std::mem::take(&mut self.state.smi_pending)
    }

    // ----- pins -----

    /// Drive LINT0 (`pin` 0: the 8259's INT output) or LINT1 (`pin` 1: the NMI line).
    pub fn set_lint(&mut self, pin: u8, level: bool) {
        let old = match pin {
            0 => std::mem::replace(&mut self.state.lint0, level),
            1 => std::mem::replace(&mut self.state.lint1, level),
            _ => return,
        };
        let rising = level && !old;
        if !self.enabled() {
            // Virtual wire: LINT1 is the processor's NMI pin (LINT0 is read as a level).
            if pin == 1 && rising {
                self.state.nmi_pending = true;
            }
            return;
        }
        let entry = self.lint_entry(pin);
        if entry & lvt::MASKED != 0 || !rising {
            self.refresh_level_lint(pin);
            return;
        }
        match DeliveryMode::from_bits(entry >> 8) {
            Some(DeliveryMode::Fixed) if entry & lvt::LEVEL == 0 => {
                self.accept_vector(entry as u8, false);
            }
            Some(DeliveryMode::Fixed) => self.refresh_level_lint(pin),
            Some(DeliveryMode::Nmi) => self.state.nmi_pending = true,
            Some(DeliveryMode::Smi) => self.state.smi_pending = true,
            Some(DeliveryMode::Init) => self.push_startup(StartupEvent::Init),
            // ExtINT follows the level: see `extint_wanted`.
            _ => {}
        }
    }

    fn lint_entry(&self, pin: u8) -> u32 {
        if pin == 1 {
            self.state.lvt_lint1
        } else {
            self.state.lvt_lint0
        }
    }

    /// A level-triggered fixed LINT pin that is asserted and not awaiting EOI delivers.
    fn refresh_level_lint(&mut self, pin: u8) {
        let (entry, level) = if pin == 1 {
            (self.state.lvt_lint1, self.state.lint1)
        } else {
            (self.state.lvt_lint0, self.state.lint0)
        };
        let fixed = DeliveryMode::from_bits(entry >> 8) == Some(DeliveryMode::Fixed);
        let idle = entry & (lvt::MASKED | lvt::REMOTE_IRR) == 0;
        if level && fixed && idle && entry & lvt::LEVEL != 0 && self.enabled() {
            self.accept_vector(entry as u8, true);
            let entry = if pin == 1 {
                &mut self.state.lvt_lint1
            } else {
                &mut self.state.lvt_lint0
            };
            *entry |= lvt::REMOTE_IRR;
        }
    }

    // ----- the CPU side -----

    /// Processor priority: the TPR or the class of the highest in-service vector.
    #[must_use]
    pub fn ppr(&self) -> u8 {
        let isrv = self.state.isr.highest().unwrap_or(0);
        if self.state.tpr >> 4 >= isrv >> 4 {
            self.state.tpr
        } else {
            isrv & 0xf0
        }
    }

    /// Arbitration priority (for lowest-priority delivery).
    #[must_use]
    pub fn apr(&self) -> u8 {
        let tpr = self.state.tpr;
        let isrv = self.state.isr.highest().unwrap_or(0);
        let irrv = self.state.irr.highest().unwrap_or(0);
        if tpr >> 4 >= irrv >> 4 && tpr >> 4 > isrv >> 4 {
            tpr
        } else {
            (tpr & 0xf0).max(isrv & 0xf0).max(irrv & 0xf0)
        }
    }

    /// Task priority register (MOV CR8 reads bits 7-4 of it).
    #[must_use]
    pub fn tpr(&self) -> u8 {
        self.state.tpr
    }

    /// Set the task priority (MOV to CR8 writes `cr8 << 4`).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.state.tpr = tpr;
    }

    /// The highest IRR vector whose priority class beats the PPR.
    fn fixed_pending(&self) -> Option<u8> {
        if !self.enabled() {
            return None;
        }
        let v = self.state.irr.highest()?;
        (v >> 4 > self.ppr() >> 4).then_some(v)
    }

    /// The 8259 needs an acknowledge cycle: an ExtINT message, or LINT0 asserted and wired
    /// through (ExtINT LVT, or the APIC disabled: virtual wire).
    fn extint_wanted(&self) -> bool {
        let s = &self.state;
        let entry = s.lvt_lint0;
        let lint0_extint = !self.enabled()
            || (entry & lvt::MASKED == 0
                && DeliveryMode::from_bits(entry >> 8) == Some(DeliveryMode::ExtInt));
        s.extint_pending || (s.lint0 && lint0_extint)
    }

    /// The most urgent thing the APIC asks of the CPU: NMI, then a fixed vector, then ExtINT.
    #[must_use]
    pub fn has_interrupt(&self) -> Option<InterruptKind> {
        if self.state.nmi_pending {
            return Some(InterruptKind::Nmi);
        }
        self.has_maskable_interrupt()
    }

    /// Like [`Lapic::has_interrupt`] without NMI: what the INTR line (gated by RFLAGS.IF)
    /// carries.
    #[must_use]
    pub fn has_maskable_interrupt(&self) -> Option<InterruptKind> {
        if let Some(v) = self.fixed_pending() {
            return Some(InterruptKind::Fixed(v));
        }
        self.extint_wanted().then_some(InterruptKind::ExtInt)
    }

    /// Acknowledge the most urgent interrupt (as [`Lapic::has_interrupt`] reports it): an
    /// NMI, else as [`Lapic::acknowledge_maskable`].
    pub fn acknowledge(&mut self) -> AckResult {
        if std::mem::take(&mut self.state.nmi_pending) {
            return AckResult::Nmi;
        }
        self.acknowledge_maskable()
    }

    /// The INTA cycle: the highest deliverable vector moves from IRR to ISR; else ExtINT;
    /// else the spurious vector.
    pub fn acknowledge_maskable(&mut self) -> AckResult {
        if let Some(ack) = self.acknowledge_fixed() {
            return ack;
        }
        if self.extint_wanted() {
            self.state.extint_pending = false;
            return AckResult::ExtInt;
        }
        AckResult::Vector(self.state.svr as u8)
    }

    // ----- MSRs and time -----

    /// IA32_APIC_BASE.
    #[must_use]
    pub fn apic_base(&self) -> u64 {
        self.state.apic_base
    }

    /// WRMSR IA32_APIC_BASE: move the window (bits 12-51) and set the global enable (bit 11).
    /// Clearing the enable puts the registers in their power-on state (the window closes);
    /// the BSP bit is read-only. Reserved bits or x2APIC mode are refused (#GP).
    pub fn set_apic_base(
        &mut self,
        value: u64,
        ctx: &mut dyn DeviceContext,
    ) -> Result<(), InvalidApicBase> {
        let writable = base::ADDRESS | base::ENABLE;
        if value & !(writable | base::BSP) != 0 {
            return Err(InvalidApicBase);
        }
        let old = self.state.apic_base;
        let new = (value & writable) | (old & base::BSP);
        if old & base::ENABLE != 0 && new & base::ENABLE == 0 {
            self.init();
        }
        self.state.apic_base = new;
        if new != old {
            ctx.remap();
        }
        Ok(())
    }

    /// RDMSR IA32_TSC_DEADLINE: the armed deadline, 0 when disarmed or not in TSC-deadline
    /// mode.
    #[must_use]
    pub fn tsc_deadline(&self) -> u64 {
        if self.timer_mode() == lvt::TIMER_TSC_DEADLINE {
            self.state.timer.tsc_deadline
        } else {
            0
        }
    }

    /// WRMSR IA32_TSC_DEADLINE: arm (non-zero) or disarm (0) the timer; ignored outside
    /// TSC-deadline mode. A deadline already past fires at the next timer call.
    pub fn set_tsc_deadline(&mut self, value: u64) {
        if self.timer_mode() == lvt::TIMER_TSC_DEADLINE {
            self.state.timer.tsc_deadline = value;
        }
    }

    /// How the TSC follows virtual time: `tsc = offset + now_ns * hz / 1e9`. The machine sets
    /// it at start and whenever the guest writes the TSC.
    pub fn set_tsc_clock(&mut self, hz: u64, offset: u64) {
        self.state.tsc_hz = hz;
        self.state.tsc_offset = offset;
    }

    /// The INIT signal: every register to its power-on value except the APIC ID and
    /// IA32_APIC_BASE; pin levels and the TSC clock stay.
    pub fn init(&mut self) {
        let s = &self.state;
        let keep = (s.apic_base, s.id, s.tsc_hz, s.tsc_offset, s.lint0, s.lint1);
        self.state = LapicState::power_on(self.initial_id, self.bsp);
        let s = &mut self.state;
        (s.apic_base, s.id, s.tsc_hz, s.tsc_offset, s.lint0, s.lint1) = keep;
    }

    fn window(&self) -> Option<MmioRange> {
        self.hardware_enabled()
            .then(|| MmioRange::new(self.state.apic_base & base::ADDRESS, WINDOW_LEN))
    }
}

impl Snapshot for Lapic {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        self.state = restore_state(STATE_VERSION, bytes)?;
        Ok(())
    }
}

impl Device for Lapic {
    fn name(&self) -> &str {
        &self.name
    }

    fn ports(&self) -> Vec<PortRange> {
        Vec::new()
    }

    fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
        u32::MAX
    }

    fn io_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut dyn DeviceContext) {}

    fn reset(&mut self) {
        let s = &self.state;
        let keep = (s.tsc_hz, s.tsc_offset, s.lint0, s.lint1);
        self.state = LapicState::power_on(self.initial_id, self.bsp);
        let s = &mut self.state;
        (s.tsc_hz, s.tsc_offset, s.lint0, s.lint1) = keep;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        if !self.hardware_enabled() {
            return None;
        }
        let s = &self.state;
        if self.timer_mode() == lvt::TIMER_TSC_DEADLINE {
            // Even masked, the deadline is consumed (the MSR reads 0 after it).
            return match s.timer.tsc_deadline {
                0 => None,
                d => tsc_time(d, s.tsc_hz, s.tsc_offset),
            };
        }
        if s.lvt_timer & lvt::MASKED != 0 {
            // Expiries of a masked timer are dropped when the LVT is next written.
            return None;
        }
        s.timer.next_expiry_ns()
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        self.sync_timer(ctx.now_ns());
    }

    fn mmio_ranges(&self) -> Vec<MmioRange> {
        self.window().into_iter().collect()
    }

    /// Registers are 32 bits wide every 16 bytes; a narrower read returns part of one, bytes
    /// 4-15 of each slot read 0.
    fn mmio_read(&mut self, addr: u64, data: &mut [u8], ctx: &mut dyn DeviceContext) {
        data.fill(0);
        let Some(window) = self.window().filter(|w| w.contains(addr)) else {
            data.fill(0xff);
            return;
        };
        let offset = addr - window.base;
        let value = self.read_register((offset & 0xff0) as u32, ctx.now_ns());
        let bytes = value.to_le_bytes();
        let start = (offset & 0xf) as usize;
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(start + i).copied().unwrap_or(0);
        }
    }

    /// Only aligned 32-bit (or wider: the low 32 bits count) writes reach a register, as the
    /// SDM requires of software.
    fn mmio_write(&mut self, addr: u64, data: &[u8], ctx: &mut dyn DeviceContext) {
        let Some(window) = self.window().filter(|w| w.contains(addr)) else {
            return;
        };
        let offset = addr - window.base;
        let (Some(bytes), 0) = (data.get(..4), offset & 0xf) else {
            return;
        };
        let value = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        self.write_register((offset & 0xff0) as u32, value, ctx.now_ns());
    }
}
