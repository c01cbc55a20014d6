//! An in-memory [`FlowSource`]: the maps as plain hash maps, for tests and benchmarks
//! that drive the reader without a kernel.

use std::collections::HashMap;

use flowmeter_common::{FlowCounters, FlowKey, Totals};

use super::{Error, FlowSource, FlowTable};

#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    pub flows: FlowTable,
    /// Keyed by (ifindex, direction).
    pub totals: HashMap<(u32, u32), Totals>,
    /// The kernel clock as the reader will see it.
    pub now_ns: u64,
}

impl FlowSource for MemorySource {
    fn flows(&mut self, visit: &mut dyn FnMut(FlowKey, FlowCounters)) -> Result<(), Error> {
        for (key, counters) in &self.flows {
            visit(*key, *counters);
        }
        Ok(())
    }

    fn totals(&mut self, ifindex: u32, direction: u32) -> Result<Totals, Error> {
        Ok(self
            .totals
            .get(&(ifindex, direction))
            .copied()
            .unwrap_or_default())
    }

    fn remove(&mut self, key: &FlowKey) -> Result<(), Error> {
        self.flows.remove(key);
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }
}
