//! A platform for unit tests: flat RAM, scripted port reads, a log of port writes.

use crate::Platform;
use std::collections::{HashMap, VecDeque};

pub struct FakePlatform {
    pub mem: Vec<u8>,
    /// Values port reads return, in order; an empty queue reads as all ones.
    pub inputs: HashMap<u16, VecDeque<u32>>,
    pub outputs: Vec<(u16, u8, u32)>,
    pub now: u64,
}

impl FakePlatform {
    pub fn new(size: usize) -> Self {
        Self {
            mem: vec![0; size],
            inputs: HashMap::new(),
            outputs: Vec::new(),
            now: 0,
        }
    }

    /// Bytes written to `port`, in order.
    pub fn written(&self, port: u16) -> Vec<u8> {
        self.outputs
            .iter()
            .filter(|(p, _, _)| *p == port)
            .map(|(_, _, v)| *v as u8)
            .collect()
    }
}

impl Platform for FakePlatform {
    fn read_mem(&mut self, paddr: u64, buf: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(paddr) else {
            return false;
        };
        match self.mem.get(start..start.saturating_add(buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
    fn write_mem(&mut self, paddr: u64, data: &[u8]) -> bool {
        let Ok(start) = usize::try_from(paddr) else {
            return false;
        };
        match self.mem.get_mut(start..start.saturating_add(data.len())) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
    fn io_in(&mut self, port: u16, size: u8) -> u32 {
        let all = match size {
            1 => 0xFF,
            2 => 0xFFFF,
            _ => 0xFFFF_FFFF,
        };
        self.inputs
            .get_mut(&port)
            .and_then(VecDeque::pop_front)
            .unwrap_or(all)
    }
    fn io_out(&mut self, port: u16, size: u8, value: u32) {
        self.outputs.push((port, size, value));
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
}
