//! The built-in demo ROM boots on the whole machine: exact serial output, clean power-off.

use nestor_device::testing::BufferBackend;
use nestor_machine::{Machine, MachineConfig, MachineExit};

#[test]
fn demo_rom_prints_its_banner_and_powers_off() {
    let serial = BufferBackend::output_only();
    let mut config = MachineConfig::new(nestor_roms::demo().to_vec(), 16);
    config.serial[0] = Some(Box::new(serial.clone()));
    let mut m = Machine::new(config).expect("machine");
    let exit = m.run(Some(50_000_000)).expect("run");
    assert_eq!(serial.output_string(), nestor_roms::DEMO_EXPECTED_SERIAL);
    assert_eq!(exit, MachineExit::PowerOff);
}

#[test]
fn deterministic_runs_are_identical() {
    let run = || {
        let serial = BufferBackend::output_only();
        let mut config = MachineConfig::new(nestor_roms::demo().to_vec(), 16);
        config.serial[0] = Some(Box::new(serial.clone()));
        let mut m = Machine::new(config).expect("machine");
        let exit = m.run(Some(50_000_000)).expect("run");
        (exit, m.vcpu.retired(), serial.output())
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_rom_sizes_are_refused() {
    for len in [0, 4096, (64 << 10) + 1, 2 << 20] {
        let err = Machine::new(MachineConfig::new(vec![0; len], 16))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("64 KiB"), "{err}");
    }
}

#[test]
fn budget_is_reported() {
    let mut m =
        Machine::new(MachineConfig::new(nestor_roms::demo().to_vec(), 16)).expect("machine");
    assert_eq!(m.run(Some(100)).expect("run"), MachineExit::BudgetExhausted);
}
