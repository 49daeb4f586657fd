//! PCI on the board: configuration mechanism #1 and the routing of PCI interrupts.
//!
//! The board, not a device, owns the configuration ports, because only the board sees every
//! device: a 32-bit access to 0xCF8 reads or writes the [`ConfigAddress`] kept in
//! [`PciHostState`], and any access to 0xCFC-0xCFF becomes a config cycle to the
//! [`PciFunction`] of the device at the addressed slot (bus 0 only; where no function answers,
//! reads return all ones). Other accesses to 0xCF8-0xCFB are ordinary port I/O: a byte at 0xCF9
//! is the PIIX3's reset control register.
//!
//! PCI devices drive the board lines `PIRQ_LINE_BASE..+4` (PIRQA..PIRQD, see
//! `nestor_device::pci::intx_line`); [`PirqRouter`] turns them into ISA IRQ levels through the
//! PIIX3's route registers, which [`pirq_routes`] reads through config space. [`pam`] reads the
//! i440FX's shadow RAM controls the same way.

use nestor_device::pci::{ConfigAddress, PciFunction, PciSlot, PIRQ_LINE_BASE};
use nestor_device::{Device, DeviceContext};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the host bridge and the ISA bridge sit on the PC.
pub const HOST_BRIDGE: PciSlot = nestor_pci_host::DEFAULT_SLOT;
pub const ISA_BRIDGE: PciSlot = nestor_piix3::DEFAULT_SLOT;

/// Guest-visible state of the configuration mechanism.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciHostState {
    /// The value last written to 0xCF8.
    pub config_address: ConfigAddress,
}

/// Whether a port access belongs to the configuration mechanism (the board hands it to
/// [`PciHostState::io`] instead of its port map).
#[must_use]
pub fn claims(port: u16, size: u8) -> bool {
    let data = ConfigAddress::DATA_PORT..=ConfigAddress::DATA_PORT + 3;
    (port == ConfigAddress::PORT && size == 4) || data.contains(&port)
}

fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

impl PciHostState {
    /// One access that [`claims`] accepted: returns the value read (0 for a write).
    pub fn io(
        &mut self,
        devices: &mut [Box<dyn Device>],
        port: u16,
        size: u8,
        write: Option<u32>,
        ctx: &mut dyn DeviceContext,
    ) -> u32 {
        if port == ConfigAddress::PORT {
            return match write {
                Some(v) => {
                    self.config_address = ConfigAddress::from_register(v);
                    0
                }
                None => self.config_address.0,
            };
        }
        // Bytes of the access past 0xCFF fall outside the window: they float.
        let size = size.clamp(1, 4);
        let inside = size.min(4 - (port & 3) as u8);
        let function = self
            .config_address
            .target(port)
            .filter(|(slot, _)| slot.bus == 0)
            .and_then(|(slot, offset)| Some((find_function(devices, slot)?, offset)));
        match (function, write) {
            (Some((f, offset)), Some(v)) => {
                f.config_write(offset, inside, v & size_mask(inside), ctx);
                0
            }
            (Some((f, offset)), None) => {
                let value = f.config_read(offset, inside) & size_mask(inside);
                (value | !size_mask(inside)) & size_mask(size)
            }
            (None, Some(_)) => 0,
            (None, None) => size_mask(size),
        }
    }
}

/// The PCI function at `slot`, if a device has one there.
pub fn find_function(
    devices: &mut [Box<dyn Device>],
    slot: PciSlot,
) -> Option<&mut dyn PciFunction> {
    devices
        .iter_mut()
        .filter_map(|d| d.pci())
        .find(|f| f.pci_slot() == slot)
}

/// Refuse two functions at one slot (call after attaching the devices).
pub fn check_slots(devices: &mut [Box<dyn Device>]) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for d in devices.iter_mut() {
        let name = d.name().to_string();
        if let Some(f) = d.pci() {
            if let Some(other) = seen.insert(f.pci_slot(), name.clone()) {
                return Err(format!(
                    "{name} and {other} both sit at PCI {}",
                    f.pci_slot()
                ));
            }
        }
    }
    Ok(())
}

/// The ISA IRQ of each of PIRQA..PIRQD as the PIIX3's route registers say (all `None` when
/// there is no ISA bridge).
pub fn pirq_routes(devices: &mut [Box<dyn Device>]) -> [Option<u8>; 4] {
    let Some(bridge) = find_function(devices, ISA_BRIDGE) else {
        return [None; 4];
    };
    let regs = bridge
        .config_read(nestor_piix3::PIRQ_ROUTE, 4)
        .to_le_bytes();
    regs.map(nestor_piix3::decode_pirq_route)
}

/// PAM0..PAM6 of the host bridge, for the memory map of 0xC0000-0xFFFFF (decode them with
/// `nestor_pci_host::pam_regions`).
pub fn pam(devices: &mut [Box<dyn Device>]) -> Option<[u8; 7]> {
    let bridge = find_function(devices, HOST_BRIDGE)?;
    let base = nestor_pci_host::reg::PAM0;
    Some(std::array::from_fn(|i| {
        bridge.config_read(base + i as u16, 1) as u8
    }))
}

/// Levels of the four PCI interrupt lines, per source, and the ISA IRQs they drive.
///
/// PCI interrupts are level-triggered and shared: a PIRQ is high while any device holds it,
/// and an ISA IRQ is high while any PIRQ routed to it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PirqRouter {
    /// Per device (by its stable name), the PIRQs it holds asserted: bit n = PIRQn.
    pub asserted: BTreeMap<String, u8>,
    /// The ISA IRQ levels last reported by [`PirqRouter::update`]: bit n = IRQn.
    pub isa_levels: u16,
}

impl PirqRouter {
    /// Whether a board line is one of the PIRQ lines.
    #[must_use]
    pub fn is_pirq_line(line: u8) -> bool {
        line.wrapping_sub(PIRQ_LINE_BASE) < 4
    }

    /// Record the level `source` drives on a PIRQ line (other lines are ignored).
    pub fn set_line(&mut self, source: &str, line: u8, level: bool) {
        if !Self::is_pirq_line(line) {
            return;
        }
        let bit = 1u8 << (line - PIRQ_LINE_BASE);
        let bits = self.asserted.get(source).copied().unwrap_or(0);
        let bits = if level { bits | bit } else { bits & !bit };
        if bits == 0 {
            self.asserted.remove(source);
        } else {
            self.asserted.insert(source.to_string(), bits);
        }
    }

    /// Whether PIRQ`n` is high (also the level of IOAPIC input 16 + n).
    #[must_use]
    pub fn pirq_level(&self, n: u8) -> bool {
        let bit = 1u8.checked_shl(u32::from(n)).unwrap_or(0);
        self.asserted.values().any(|&bits| bits & bit != 0)
    }

    /// The ISA IRQ levels the PIRQs drive through `routes`, as changes since the last call:
    /// (IRQ, level) pairs for the board to hand to the PIC.
    pub fn update(&mut self, routes: [Option<u8>; 4]) -> Vec<(u8, bool)> {
        let mut levels = 0u16;
        for (n, route) in (0u8..).zip(routes) {
            if let Some(irq) = route.filter(|&irq| irq < 16) {
                if self.pirq_level(n) {
                    levels |= 1 << irq;
                }
            }
        }
        let changed = levels ^ self.isa_levels;
        self.isa_levels = levels;
        (0..16u8)
            .filter(|irq| changed & (1 << irq) != 0)
            .map(|irq| (irq, levels & (1 << irq) != 0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_device::testing::FakeContext;
    use nestor_device::{PortRange, Snapshot, StateError};
    use nestor_pci_host::I440fx;
    use nestor_piix3::Piix3;

    /// A PCI function with an ID and a writable scratch dword at 0x40.
    struct Card {
        slot: PciSlot,
        scratch: u32,
    }

    impl Snapshot for Card {
        fn save(&self) -> Result<Vec<u8>, StateError> {
            Ok(Vec::new())
        }
        fn restore(&mut self, _bytes: &[u8]) -> Result<(), StateError> {
            Ok(())
        }
    }

    impl Device for Card {
        fn name(&self) -> &str {
            "card"
        }
        fn ports(&self) -> Vec<PortRange> {
            Vec::new()
        }
        fn io_read(&mut self, _port: u16, _size: u8, _ctx: &mut dyn DeviceContext) -> u32 {
            0
        }
        fn io_write(&mut self, _port: u16, _size: u8, _value: u32, _ctx: &mut dyn DeviceContext) {}
        fn reset(&mut self) {}
        fn next_deadline_ns(&self) -> Option<u64> {
            None
        }
        fn on_timer(&mut self, _ctx: &mut dyn DeviceContext) {}
        fn pci(&mut self) -> Option<&mut dyn PciFunction> {
            Some(self)
        }
    }

    impl PciFunction for Card {
        fn pci_slot(&self) -> PciSlot {
            self.slot
        }
        fn config_read(&mut self, offset: u16, _size: u8) -> u32 {
            match offset & !3 {
                0 => 0x1234_1af4 >> (8 * (offset & 3)),
                0x40 => self.scratch >> (8 * (offset & 3)),
                _ => 0,
            }
        }
        fn config_write(&mut self, offset: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
            if offset == 0x40 && size == 4 {
                self.scratch = value;
                ctx.remap();
            }
        }
    }

    fn card(device: u8) -> Box<dyn Device> {
        Box::new(Card {
            slot: PciSlot::new(0, device, 0),
            scratch: 0,
        })
    }

    fn address(device: u8, function: u8, register: u8) -> u32 {
        0x8000_0000 | (u32::from(device) << 11) | (u32::from(function) << 8) | u32::from(register)
    }

    #[test]
    fn claims_only_the_mechanism_ports() {
        assert!(claims(0xcf8, 4));
        assert!(!claims(0xcf8, 1) && !claims(0xcf8, 2));
        assert!(!claims(0xcf9, 1), "the PIIX3's reset control register");
        assert!(claims(0xcfc, 1) && claims(0xcfd, 2) && claims(0xcff, 1) && claims(0xcfe, 4));
        assert!(!claims(0xd00, 1) && !claims(0xcfb, 1));
    }

    #[test]
    fn address_register_round_trips() {
        let mut host = PciHostState::default();
        let mut ctx = FakeContext::new();
        let mut devices: Vec<Box<dyn Device>> = Vec::new();
        host.io(&mut devices, 0xcf8, 4, Some(0x8000_0000), &mut ctx);
        assert_eq!(host.io(&mut devices, 0xcf8, 4, None, &mut ctx), 0x8000_0000);
        host.io(&mut devices, 0xcf8, 4, Some(0xffff_ffff), &mut ctx);
        assert_eq!(host.io(&mut devices, 0xcf8, 4, None, &mut ctx), 0x80ff_fffc);
    }

    #[test]
    fn config_cycles_reach_the_function_at_the_slot() {
        let mut host = PciHostState::default();
        let mut ctx = FakeContext::new();
        let mut devices = vec![card(3)];
        host.io(&mut devices, 0xcf8, 4, Some(address(3, 0, 0)), &mut ctx);
        assert_eq!(host.io(&mut devices, 0xcfc, 4, None, &mut ctx), 0x1234_1af4);
        assert_eq!(host.io(&mut devices, 0xcfe, 2, None, &mut ctx), 0x1234);
        assert_eq!(host.io(&mut devices, 0xcfd, 1, None, &mut ctx), 0x1a);
        host.io(&mut devices, 0xcf8, 4, Some(address(3, 0, 0x40)), &mut ctx);
        host.io(&mut devices, 0xcfc, 4, Some(0xdead_beef), &mut ctx);
        assert_eq!(ctx.remaps, 1, "the device's context reaches it");
        assert_eq!(host.io(&mut devices, 0xcfc, 4, None, &mut ctx), 0xdead_beef);
        assert_eq!(
            host.io(&mut devices, 0xcfe, 4, None, &mut ctx),
            0xffff_dead,
            "clipped at 0xCFF"
        );
    }

    #[test]
    fn absent_functions_and_other_buses_read_all_ones() {
        let mut host = PciHostState::default();
        let mut ctx = FakeContext::new();
        let mut devices = vec![card(3)];
        for a in [
            address(4, 0, 0),
            address(3, 1, 0),
            address(3, 0, 0) | (1 << 16),
            address(3, 0, 0) & !0x8000_0000,
        ] {
            host.io(&mut devices, 0xcf8, 4, Some(a), &mut ctx);
            assert_eq!(
                host.io(&mut devices, 0xcfc, 4, None, &mut ctx),
                u32::MAX,
                "{a:#x}"
            );
            assert_eq!(host.io(&mut devices, 0xcfc, 2, None, &mut ctx), 0xffff);
            host.io(&mut devices, 0xcfc, 4, Some(0), &mut ctx);
        }
    }

    #[test]
    fn duplicate_slots_are_refused() {
        let mut devices = vec![card(3), card(4)];
        assert_eq!(check_slots(&mut devices), Ok(()));
        devices.push(card(3));
        assert!(check_slots(&mut devices).is_err());
    }

    #[test]
    fn chipset_registers_through_config_space() {
        let mut host = PciHostState::default();
        let mut ctx = FakeContext::new();
        let mut devices: Vec<Box<dyn Device>> =
            vec![Box::new(I440fx::new()), Box::new(Piix3::new())];
        assert_eq!(pirq_routes(&mut devices), [None; 4]);
        host.io(&mut devices, 0xcf8, 4, Some(address(1, 0, 0x60)), &mut ctx);
        host.io(&mut devices, 0xcfc, 4, Some(0x0b0b_0a0a), &mut ctx);
        assert_eq!(
            pirq_routes(&mut devices),
            [Some(10), Some(10), Some(11), Some(11)]
        );
        host.io(&mut devices, 0xcf8, 4, Some(address(0, 0, 0x58)), &mut ctx);
        host.io(&mut devices, 0xcfd, 1, Some(0x30), &mut ctx);
        assert_eq!(ctx.remaps, 1, "PAM change remaps");
        assert_eq!(pam(&mut devices), Some([0x30, 0, 0, 0, 0, 0, 0]));
        host.io(&mut devices, 0xcf8, 4, Some(address(0, 0, 0)), &mut ctx);
        assert_eq!(host.io(&mut devices, 0xcfc, 4, None, &mut ctx), 0x1237_8086);
        host.io(&mut devices, 0xcf8, 4, Some(address(1, 0, 0x0c)), &mut ctx);
        assert_eq!(
            host.io(&mut devices, 0xcfe, 1, None, &mut ctx),
            0x80,
            "multi-function"
        );
        assert_eq!(pam(&mut Vec::new()), None);
    }

    #[test]
    fn pirqs_are_shared_and_follow_the_routes() {
        let mut r = PirqRouter::default();
        let routes = [Some(10), Some(10), Some(11), None];
        r.set_line("nic", PIRQ_LINE_BASE, true);
        assert_eq!(r.update(routes), vec![(10, true)]);
        r.set_line("disk", PIRQ_LINE_BASE + 1, true);
        assert_eq!(r.update(routes), vec![], "IRQ 10 already high");
        r.set_line("nic", PIRQ_LINE_BASE, false);
        assert_eq!(r.update(routes), vec![], "still held by the disk on PIRQB");
        r.set_line("disk", PIRQ_LINE_BASE + 1, false);
        assert_eq!(r.update(routes), vec![(10, false)]);
        r.set_line("usb", PIRQ_LINE_BASE + 3, true);
        assert_eq!(r.update(routes), vec![], "PIRQD is not routed");
        assert!(r.pirq_level(3));
        assert_eq!(
            r.update([None, None, None, Some(5)]),
            vec![(5, true)],
            "routing it raises IRQ 5"
        );
        r.set_line("usb", 4, true);
        r.set_line("usb", PIRQ_LINE_BASE + 4, true);
        assert_eq!(r.asserted.len(), 1, "non-PIRQ lines are ignored");
        r.set_line("usb", PIRQ_LINE_BASE + 3, false);
        assert!(r.asserted.is_empty());
        assert!(!r.pirq_level(9));
    }
}
