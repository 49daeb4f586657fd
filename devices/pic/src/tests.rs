use super::*;
use nestor_device::testing::FakeContext;

fn out(pic: &mut Pic, port: u16, value: u8) {
    pic.io_write(port, 1, u32::from(value), &mut FakeContext::new());
}

fn inb(pic: &mut Pic, port: u16) -> u8 {
    pic.io_read(port, 1, &mut FakeContext::new()) as u8
}

/// The initialization every PC BIOS (and Linux's init_8259A) performs.
fn bios_pic() -> Pic {
    let mut pic = Pic::new();
    for (port, value) in [
        (0x20, 0x11),
        (0x21, 0x08),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xa0, 0x11),
        (0xa1, 0x70),
        (0xa1, 0x02),
        (0xa1, 0x01),
        (0x21, 0x00),
        (0xa1, 0x00),
    ] {
        out(&mut pic, port, value);
    }
    pic
}

fn pulse(pic: &mut Pic, line: u8) {
    pic.set_irq(line, false);
    pic.set_irq(line, true);
}

fn read_isr(pic: &mut Pic, base: u16) -> u8 {
    out(pic, base, 0x0b);
    let isr = inb(pic, base);
    out(pic, base, 0x0a);
    isr
}

#[test]
fn bios_init_sets_vectors_and_modes() {
    let pic = bios_pic();
    let s = pic.state();
    assert_eq!((s.master.vector_base, s.slave.vector_base), (0x08, 0x70));
    assert_eq!((s.master.cascade, s.slave.cascade), (0x04, 0x02));
    assert!(s.master.x86_mode && s.slave.x86_mode);
    assert_eq!(s.master.init, InitStep::Ready);
    assert!(!pic.has_interrupt());
}

#[test]
fn imr_irr_and_isr_read_back() {
    let mut pic = bios_pic();
    out(&mut pic, 0x21, 0xa8);
    assert_eq!(inb(&mut pic, 0x21), 0xa8);
    pic.set_irq(3, true);
    pic.set_irq(4, true);
    assert_eq!(inb(&mut pic, 0x20), 0x18, "IRR has masked requests too");
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), 0x0c);
    assert_eq!(read_isr(&mut pic, 0x20), 0x10);
    assert_eq!(inb(&mut pic, 0x20), 0x08, "OCW3 0x0a reads IRR again");
    // A 16-bit read of 0x20 returns IRR and IMR.
    assert_eq!(pic.io_read(0x20, 2, &mut FakeContext::new()), 0xa808);
}

#[test]
fn fully_nested_priorities_and_eoi() {
    let mut pic = bios_pic();
    pic.set_irq(3, true);
    pic.set_irq(1, true);
    assert_eq!(pic.acknowledge(), 0x09);
    // IRQ3 waits for IRQ1's EOI, but IRQ0 preempts IRQ1.
    assert!(!pic.has_interrupt());
    pic.set_irq(0, true);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), 0x08);
    assert_eq!(read_isr(&mut pic, 0x20), 0x03);
    out(&mut pic, 0x20, 0x20); // non-specific EOI ends IRQ0 (highest in service)
    assert_eq!(read_isr(&mut pic, 0x20), 0x02);
    assert!(!pic.has_interrupt());
    out(&mut pic, 0x20, 0x61); // specific EOI for IRQ1
    assert_eq!(pic.acknowledge(), 0x0b);
    out(&mut pic, 0x20, 0x63);
    assert_eq!(read_isr(&mut pic, 0x20), 0);
}

#[test]
fn edge_inputs_need_a_new_rising_edge() {
    let mut pic = bios_pic();
    pic.set_irq(4, true);
    assert_eq!(pic.acknowledge(), 0x0c);
    out(&mut pic, 0x20, 0x20);
    pic.set_irq(4, true);
    assert!(!pic.has_interrupt(), "a line held high requests once");
    pulse(&mut pic, 4);
    assert_eq!(pic.acknowledge(), 0x0c);
}

#[test]
fn level_inputs_via_elcr_request_while_high() {
    let mut pic = bios_pic();
    out(&mut pic, 0x4d1, 0xff);
    assert_eq!(
        inb(&mut pic, 0x4d1),
        0xde,
        "IRQ8 and IRQ13 stay edge triggered"
    );
    out(&mut pic, 0x4d0, 0xff);
    assert_eq!(pic.elcr(), 0xdef8);
    pic.set_irq(11, true);
    assert_eq!(pic.acknowledge(), 0x73);
    out(&mut pic, 0xa0, 0x20);
    out(&mut pic, 0x20, 0x20);
    assert!(pic.has_interrupt(), "still high after EOI: requested again");
    assert_eq!(pic.acknowledge(), 0x73);
    out(&mut pic, 0xa0, 0x20);
    out(&mut pic, 0x20, 0x20);
    pic.set_irq(11, false);
    assert!(!pic.has_interrupt());
}

#[test]
fn ltim_makes_every_input_level_triggered() {
    let mut pic = Pic::new();
    for (port, value) in [(0x20, 0x1b), (0x21, 0x20), (0x21, 0x01)] {
        out(&mut pic, port, value); // single, LTIM, ICW4
    }
    pic.set_irq(5, true);
    assert_eq!(pic.acknowledge(), 0x25);
    out(&mut pic, 0x20, 0x20);
    assert_eq!(pic.acknowledge(), 0x25);
}

#[test]
fn cascade_delivers_slave_vectors_and_needs_two_eois() {
    let mut pic = bios_pic();
    pic.set_irq(12, true);
    assert_eq!(inb(&mut pic, 0x20) & 0x04, 0x04, "slave INT on master IR2");
    assert_eq!(pic.acknowledge(), 0x74);
    pic.set_irq(8, true);
    // The slave's IR0 outranks IR4 on the slave, but the master has IR2 in service.
    assert!(!pic.has_interrupt());
    out(&mut pic, 0xa0, 0x20);
    out(&mut pic, 0x20, 0x20);
    assert_eq!(pic.acknowledge(), 0x70);
    assert_eq!(read_isr(&mut pic, 0xa0), 0x01);
    assert_eq!(read_isr(&mut pic, 0x20), 0x04);
}

#[test]
fn special_fully_nested_lets_a_higher_slave_request_through() {
    let mut pic = bios_pic();
    out(&mut pic, 0x20, 0x11);
    out(&mut pic, 0x21, 0x08);
    out(&mut pic, 0x21, 0x04);
    out(&mut pic, 0x21, 0x11); // SFNM
    pic.set_irq(12, true);
    assert_eq!(pic.acknowledge(), 0x74);
    pic.set_irq(8, true);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), 0x70);
}

#[test]
fn masked_slave_keeps_master_ir2_low() {
    let mut pic = bios_pic();
    out(&mut pic, 0xa1, 0x10);
    pic.set_irq(12, true);
    assert!(!pic.has_interrupt());
    out(&mut pic, 0xa1, 0x00);
    assert_eq!(pic.acknowledge(), 0x74);
}

#[test]
fn spurious_irq7_when_request_vanishes() {
    let mut pic = bios_pic();
    pic.set_irq(5, true);
    assert!(pic.has_interrupt());
    pic.set_irq(5, false);
    assert!(!pic.has_interrupt());
    assert_eq!(pic.acknowledge(), 0x0f);
    assert_eq!(
        read_isr(&mut pic, 0x20),
        0,
        "a spurious IRQ7 is not in service"
    );
}

#[test]
fn spurious_irq15_when_slave_has_nothing() {
    let mut state = bios_pic().state().clone();
    state.master.irr = 0x04;
    let mut pic = Pic::from_state(state);
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), 0x77);
    assert_eq!(read_isr(&mut pic, 0x20), 0x04, "master IR2 is in service");
    assert_eq!(read_isr(&mut pic, 0xa0), 0);
}

#[test]
fn auto_eoi_leaves_nothing_in_service() {
    let mut pic = Pic::new();
    for (port, value) in [(0x20, 0x13), (0x21, 0x08), (0x21, 0x03)] {
        out(&mut pic, port, value);
    }
    pic.set_irq(6, true);
    assert_eq!(pic.acknowledge(), 0x0e);
    assert_eq!(read_isr(&mut pic, 0x20), 0);
    pic.set_irq(7, true);
    assert_eq!(pic.acknowledge(), 0x0f);
}

#[test]
fn rotation_commands_move_priorities() {
    let mut pic = bios_pic();
    pic.set_irq(0, true);
    assert_eq!(pic.acknowledge(), 0x08);
    out(&mut pic, 0x20, 0xa0); // rotate on non-specific EOI: IRQ0 now lowest
    assert_eq!(pic.state().master.lowest_priority, 0);
    pulse(&mut pic, 0);
    pic.set_irq(1, true);
    assert_eq!(pic.acknowledge(), 0x09);
    out(&mut pic, 0x20, 0xe1); // rotate on specific EOI of IRQ1
    assert_eq!(pic.acknowledge(), 0x08);
    out(&mut pic, 0x20, 0x60);
    out(&mut pic, 0x20, 0xc4); // set priority: IRQ4 lowest, IRQ5 highest
    pic.set_irq(3, true);
    pic.set_irq(6, true);
    assert_eq!(pic.acknowledge(), 0x0e);
}

#[test]
fn rotate_in_auto_eoi_mode() {
    let mut pic = Pic::new();
    for (port, value) in [(0x20, 0x13), (0x21, 0x08), (0x21, 0x03)] {
        out(&mut pic, port, value);
    }
    out(&mut pic, 0x20, 0x80);
    pic.set_irq(1, true);
    pic.set_irq(5, true);
    assert_eq!(pic.acknowledge(), 0x09);
    assert_eq!(pic.state().master.lowest_priority, 1);
    pulse(&mut pic, 1);
    assert_eq!(pic.acknowledge(), 0x0d, "IRQ5 now outranks IRQ1");
    out(&mut pic, 0x20, 0x00);
    assert!(!pic.state().master.rotate_on_auto_eoi);
}

#[test]
fn special_mask_mode_enables_lower_levels() {
    let mut pic = bios_pic();
    pic.set_irq(3, true);
    assert_eq!(pic.acknowledge(), 0x0b);
    pic.set_irq(5, true);
    assert!(!pic.has_interrupt());
    out(&mut pic, 0x21, 0x08);
    out(&mut pic, 0x20, 0x68); // set special mask
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), 0x0d);
    out(&mut pic, 0x20, 0x48); // reset special mask
    assert!(!pic.state().master.special_mask);
}

#[test]
fn poll_mode_reads_and_acknowledges() {
    let mut pic = bios_pic();
    out(&mut pic, 0x20, 0x0c);
    assert_eq!(inb(&mut pic, 0x20), 0x00, "nothing pending");
    pic.set_irq(6, true);
    out(&mut pic, 0x20, 0x0c);
    assert_eq!(inb(&mut pic, 0x21), 0x86);
    assert_eq!(read_isr(&mut pic, 0x20), 0x40);
    assert_eq!(inb(&mut pic, 0x21), 0x00, "poll lasts one read; IMR again");
}

#[test]
fn icw1_reinitializes() {
    let mut pic = bios_pic();
    out(&mut pic, 0x21, 0xff);
    pic.set_irq(1, true);
    out(&mut pic, 0x20, 0x0b);
    out(&mut pic, 0x20, 0x11);
    assert_eq!(pic.state().master.init, InitStep::Icw2);
    assert_eq!(pic.state().master.imr, 0);
    assert_eq!(pic.state().master.irr, 0, "edge latches are reset");
    assert!(!pic.state().master.read_isr);
    out(&mut pic, 0x21, 0x20);
    out(&mut pic, 0x21, 0x04);
    out(&mut pic, 0x21, 0x01);
    pulse(&mut pic, 1);
    assert_eq!(pic.acknowledge(), 0x21);
}

#[test]
fn wrong_slave_identity_floats_the_bus() {
    let mut pic = bios_pic();
    out(&mut pic, 0xa0, 0x11);
    out(&mut pic, 0xa1, 0x70);
    out(&mut pic, 0xa1, 0x03);
    out(&mut pic, 0xa1, 0x01);
    pic.set_irq(9, true);
    assert_eq!(pic.acknowledge(), 0xff);
}

#[test]
fn state_round_trips() {
    let mut pic = bios_pic();
    pic.set_irq(12, true);
    pic.acknowledge();
    pic.set_irq(1, true);
    out(&mut pic, 0x20, 0x0b);
    out(&mut pic, 0x4d0, 0x20);
    let mut copy = Pic::new();
    copy.restore(&pic.save().unwrap()).unwrap();
    assert_eq!(copy.state(), pic.state());
    assert!(copy.restore(&[0xff; 3]).is_err());
}

#[test]
fn restored_pic_carries_on_like_the_original() {
    let mut a = bios_pic();
    a.set_irq(3, true);
    assert_eq!(a.acknowledge(), 0x0b);
    a.set_irq(10, true);
    a.set_irq(5, true);
    out(&mut a, 0x20, 0xc6);
    let mut b = Pic::new();
    b.restore(&a.save().unwrap()).unwrap();
    let script: [(u16, u8); 5] = [
        (0x20, 0x20),
        (0xa0, 0x20),
        (0x20, 0x20),
        (0x20, 0x0b),
        (0x21, 0x10),
    ];
    for (step, (port, value)) in script.into_iter().enumerate() {
        for pic in [&mut a, &mut b] {
            out(pic, port, value);
            pic.set_irq(step as u8 + 3, true);
        }
        assert_eq!(a.has_interrupt(), b.has_interrupt());
        if a.has_interrupt() {
            assert_eq!(a.acknowledge(), b.acknowledge());
        }
        assert_eq!(inb(&mut a, 0x20), inb(&mut b, 0x20));
        assert_eq!(a.state(), b.state());
    }
}

#[test]
fn reset_keeps_line_levels() {
    let mut pic = bios_pic();
    pic.set_irq(4, true);
    pic.reset();
    assert_eq!(pic.state().master.inputs, 0x10);
    assert_eq!(pic.state().master.irr, 0);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut pic = Pic::new();
    let mut ctx = FakeContext::new();
    let mut x: u32 = 0x1234_5678;
    let ports = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22, 0x4cf];
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = ports[(x % 8) as usize];
        let size = [1, 2, 4][((x >> 3) % 3) as usize];
        match (x >> 8) % 4 {
            0 => {
                pic.io_read(port, size, &mut ctx);
            }
            1 => pic.set_irq((x >> 12) as u8 % 20, x & 0x8000 != 0),
            2 => {
                if pic.has_interrupt() {
                    pic.acknowledge();
                }
            }
            _ => pic.io_write(port, size, x >> 16, &mut ctx),
        }
    }
}

#[test]
fn plugin_builds_a_pic() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.ports().len(), 3);
    config.options.insert("irq".into(), "1".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
