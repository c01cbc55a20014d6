//! The interfaces a [`Reader`](super::Reader) reports, as they come and go: each one's
//! totals are read and kept under the ifindex it had when the programs attached (its
//! totals slot), its name stands for every ifindex it has had (an interface deleted and
//! created again gets a new one), and only present interfaces have totals.
//!
//! `presence` finds the changes and tells the reader ([`Reader::interface_gone`],
//! [`Reader::interface_back`]), which asks this table what each read reports.
//!
//! [`Reader::interface_gone`]: super::Reader::interface_gone
//! [`Reader::interface_back`]: super::Reader::interface_back

use std::sync::Arc;

use super::Interface;

/// Every metered interface, present or not.
pub(super) struct MeteredInterfaces {
    interfaces: Vec<Metered>,
    /// Ifindexes interfaces took after the start: (ifindex, position in `interfaces`).
    later_indexes: Vec<(u32, usize)>,
}

struct Metered {
    /// Its ifindex at start: the key of its totals.
    totals_key: u32,
    name: Arc<str>,
    presence: Presence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presence {
    Present,
    /// Deleted since the previous read: the next read reports its last totals.
    Leaving,
    /// In no read's totals until it comes back.
    Gone,
}

/// One interface whose totals a read reports.
pub(super) struct Reported {
    pub totals_key: u32,
    pub name: Arc<str>,
    /// Its last read before it is gone: no program counts on it any more.
    pub last: bool,
}

impl MeteredInterfaces {
    pub fn new(interfaces: &[Interface]) -> Self {
        Self {
            interfaces: interfaces
                .iter()
                .map(|i| Metered {
                    totals_key: i.ifindex,
                    name: Arc::from(i.name.as_str()),
                    presence: Presence::Present,
                })
                .collect(),
            later_indexes: Vec::new(),
        }
    }

    /// The interfaces the next read reports totals for, in the order given at start.
    pub fn reported(&self) -> Vec<Reported> {
        self.interfaces
            .iter()
            .filter(|i| i.presence != Presence::Gone)
            .map(|i| Reported {
                totals_key: i.totals_key,
                name: i.name.clone(),
                last: i.presence == Presence::Leaving,
            })
            .collect()
    }

    /// After a read: the interfaces whose last totals it reported are gone.
    pub fn settle(&mut self) {
        for interface in &mut self.interfaces {
            if interface.presence == Presence::Leaving {
                interface.presence = Presence::Gone;
            }
        }
    }

    /// Every ifindex the interface with totals key `totals_key` has had.
    pub fn ifindexes(&self, totals_key: u32) -> impl Iterator<Item = u32> + '_ {
        let position = self
            .interfaces
            .iter()
            .position(|i| i.totals_key == totals_key);
        std::iter::once(totals_key).chain(
            self.later_indexes
                .iter()
                .filter(move |(_, at)| Some(*at) == position)
                .map(|(ifindex, _)| *ifindex),
        )
    }

    /// The name of the interface that has or had `ifindex` (its number if none did).
    pub fn name_of(&self, ifindex: u32) -> Arc<str> {
        let at_start = self.interfaces.iter().position(|i| i.totals_key == ifindex);
        let later = || {
            self.later_indexes
                .iter()
                .find(|(index, _)| *index == ifindex)
                .map(|(_, at)| *at)
        };
        match at_start.or_else(later) {
            Some(at) => self.interfaces[at].name.clone(),
            None => Arc::from(ifindex.to_string()),
        }
    }

    /// `name` was deleted: the next read reports its last totals, later ones none.
    /// False if no present interface has that name.
    pub fn gone(&mut self, name: &str) -> bool {
        match self.find(name) {
            Some(interface) if interface.presence == Presence::Present => {
                interface.presence = Presence::Leaving;
                true
            }
            _ => false,
        }
    }

    /// `name` is metered again, now under `ifindex`: its totals go on from where they
    /// were (the programs count it in the same slot). False if it is not metered.
    pub fn back(&mut self, name: &str, ifindex: u32) -> bool {
        let Some(at) = self.interfaces.iter().position(|i| &*i.name == name) else {
            return false;
        };
        self.interfaces[at].presence = Presence::Present;
        let known = self.interfaces[at].totals_key == ifindex
            || self
                .later_indexes
                .iter()
                .any(|&(index, _)| index == ifindex);
        if !known {
            self.later_indexes.push((ifindex, at));
        }
        true
    }

    fn find(&mut self, name: &str) -> Option<&mut Metered> {
        self.interfaces.iter_mut().find(|i| &*i.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::LinkLayer;

    fn table() -> MeteredInterfaces {
        let interface = |name: &str, ifindex| Interface {
            name: name.into(),
            ifindex,
            link: LinkLayer::Ethernet,
        };
        MeteredInterfaces::new(&[interface("eth0", 2), interface("veth9", 5)])
    }

    fn reported(table: &MeteredInterfaces) -> Vec<(String, bool)> {
        table
            .reported()
            .into_iter()
            .map(|r| (r.name.to_string(), r.last))
            .collect()
    }

    #[test]
    fn a_gone_interface_is_reported_once_more_then_not_until_it_is_back() {
        let mut table = table();
        assert!(table.gone("veth9"));
        assert!(!table.gone("veth9"), "already going");
        assert!(!table.gone("wlan0"), "not metered");
        assert_eq!(
            reported(&table),
            [("eth0".into(), false), ("veth9".into(), true)]
        );
        table.settle();
        assert_eq!(reported(&table), [("eth0".into(), false)]);
        assert!(table.back("veth9", 11));
        assert!(!table.back("wlan0", 12));
        table.settle();
        assert_eq!(
            reported(&table),
            [("eth0".into(), false), ("veth9".into(), false)]
        );
    }

    #[test]
    fn every_index_an_interface_had_names_it_and_adds_to_its_totals() {
        let mut table = table();
        table.gone("veth9");
        table.settle();
        table.back("veth9", 11);
        table.gone("veth9");
        table.settle();
        table.back("veth9", 14);
        table.back("veth9", 14);
        for ifindex in [5, 11, 14] {
            assert_eq!(&*table.name_of(ifindex), "veth9");
        }
        assert_eq!(&*table.name_of(2), "eth0");
        assert_eq!(&*table.name_of(99), "99");
        assert_eq!(table.ifindexes(5).collect::<Vec<_>>(), [5, 11, 14]);
        assert_eq!(table.ifindexes(2).collect::<Vec<_>>(), [2]);
    }
}
