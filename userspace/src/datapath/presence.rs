//! Interfaces that come and go while metered. Before each read, [`Presence::follow`]
//! asks the kernel which ifindex each metered name has now (`if_nametoindex` in the
//! metering thread's namespace: a few syscalls per interface, no netlink socket kept).
//! An interface whose attached ifindex no longer exists was deleted: the datapath lets
//! it go, and the reader reports its last totals in that read and none after. When the
//! name exists again, the programs are attached to its new ifindex and its totals go
//! on; where they cannot be, the event says why.
//!
//! The events go on to the command: a stderr line, and an `interface` record in the log
//! (`sinks::schema::InterfaceRecord`).

use std::fmt;

use super::{Attachment, Datapath, FlowSource, Interface, Reader, interfaces};

/// Which ifindex each metered interface is attached to, or that it is gone.
pub struct Presence {
    watched: Vec<Watched>,
}

struct Watched {
    name: String,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Metered under this ifindex.
    Attached(u32),
    /// Deleted; no interface has its name.
    Gone,
    /// Back under this ifindex, and not metered there (the event said why).
    Refused(u32),
}

/// What the kernel says of interfaces now: the seam the tests answer from a table.
pub trait Links {
    /// The ifindex of the interface named `name`, if there is one.
    fn index_of(&self, name: &str) -> Option<u32>;
    /// Whether an interface has `ifindex`.
    fn exists(&self, ifindex: u32) -> bool;
}

/// The kernel's answers, in this thread's network namespace.
pub struct System;

impl Links for System {
    fn index_of(&self, name: &str) -> Option<u32> {
        interfaces::ifindex_of(name)
    }

    fn exists(&self, ifindex: u32) -> bool {
        interfaces::name_of(ifindex).is_some()
    }
}

/// A change [`Presence::changes`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The interface attached under `ifindex` was deleted.
    Gone { name: String, ifindex: u32 },
    /// An interface of a gone one's name exists again, under `ifindex`.
    Appeared { name: String, ifindex: u32 },
}

/// An interface gone or back, as the command tells it.
#[derive(Clone, Debug)]
pub struct InterfaceEvent {
    pub iface: String,
    /// The ifindex that went, or the one it came back under.
    pub ifindex: u32,
    pub happened: Happened,
}

#[derive(Clone, Debug)]
pub enum Happened {
    /// Deleted: its last counts are in this read, and it is in no totals after it.
    Gone,
    /// Back, and metered again as attached here.
    Back(Attachment),
    /// Back, and not metered, for this reason.
    NotMetered(String),
}

impl fmt::Display for InterfaceEvent {
    /// The stderr line, without the `flowmeter: ` before it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (iface, ifindex) = (&self.iface, self.ifindex);
        match &self.happened {
            Happened::Gone => write!(
                f,
                "interface {iface} is gone (deleted); its counts until now are kept, it is \
                 left out of the totals from here on, and metered again if it comes back"
            ),
            Happened::Back(attachment) => write!(
                f,
                "interface {iface} is back (ifindex {ifindex}); metered again: ingress {} \
                 ({}), egress tc",
                attachment.ingress, attachment.reason
            ),
            Happened::NotMetered(reason) => write!(
                f,
                "interface {iface} is back (ifindex {ifindex}) but is not metered: {reason}"
            ),
        }
    }
}

impl Presence {
    /// Every interface attached under the ifindex it has now.
    pub fn new(interfaces: &[Interface]) -> Self {
        Self {
            watched: interfaces
                .iter()
                .map(|i| Watched {
                    name: i.name.clone(),
                    state: State::Attached(i.ifindex),
                })
                .collect(),
        }
    }

    /// Finds the interfaces deleted or created again since the last call, and acts on
    /// them: the datapath lets a gone one go and attaches to one that is back, the
    /// reader leaves a gone one out of its totals after this read (see
    /// [`Reader::interface_gone`]). Call it before the read.
    pub fn follow<S: FlowSource>(
        &mut self,
        datapath: &mut Datapath,
        reader: &mut Reader<S>,
    ) -> Vec<InterfaceEvent> {
        let mut events = Vec::new();
        for change in self.changes(&System) {
            let event = match change {
                Change::Gone { name, ifindex } => {
                    datapath.forget(ifindex);
                    reader.interface_gone(&name);
                    InterfaceEvent {
                        iface: name,
                        ifindex,
                        happened: Happened::Gone,
                    }
                }
                Change::Appeared { name, ifindex } => match datapath.attach_again(&name) {
                    Ok(attachment) => {
                        // It may have changed again since `changes` looked.
                        let ifindex = attachment.interface.ifindex;
                        self.set(&name, State::Attached(ifindex));
                        reader.interface_back(&name, ifindex);
                        InterfaceEvent {
                            iface: name,
                            ifindex,
                            happened: Happened::Back(attachment),
                        }
                    }
                    Err(error) => {
                        self.set(&name, State::Refused(ifindex));
                        InterfaceEvent {
                            iface: name,
                            ifindex,
                            happened: Happened::NotMetered(error.to_string()),
                        }
                    }
                },
            };
            events.push(event);
        }
        events
    }

    /// What changed since the last call, as `links` tells it. An interface found back
    /// is taken as attached under its new ifindex until [`Self::set`] says otherwise.
    pub fn changes(&mut self, links: &impl Links) -> Vec<Change> {
        let mut changes = Vec::new();
        for watched in &mut self.watched {
            let now = links.index_of(&watched.name);
            if let State::Attached(ifindex) = watched.state {
                // Still there, maybe renamed: the programs stay on that interface.
                if now == Some(ifindex) || links.exists(ifindex) {
                    continue;
                }
                changes.push(Change::Gone {
                    name: watched.name.clone(),
                    ifindex,
                });
                watched.state = State::Gone;
            }
            let tried = match watched.state {
                State::Refused(ifindex) => Some(ifindex),
                _ => None,
            };
            match now {
                // Refused under that index already: said once.
                Some(ifindex) if Some(ifindex) == tried => {}
                Some(ifindex) => {
                    changes.push(Change::Appeared {
                        name: watched.name.clone(),
                        ifindex,
                    });
                    watched.state = State::Attached(ifindex);
                }
                None => watched.state = State::Gone,
            }
        }
        changes
    }

    fn set(&mut self, name: &str, state: State) {
        if let Some(watched) = self.watched.iter_mut().find(|w| w.name == name) {
            watched.state = state;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, collections::HashMap};

    use super::*;
    use crate::datapath::LinkLayer;

    /// Interfaces by name, as a test sets them.
    #[derive(Default)]
    struct Table(RefCell<HashMap<String, u32>>);

    impl Table {
        fn set(&self, name: &str, ifindex: Option<u32>) {
            let mut links = self.0.borrow_mut();
            match ifindex {
                Some(ifindex) => links.insert(name.into(), ifindex),
                None => links.remove(name),
            };
        }
    }

    impl Links for Table {
        fn index_of(&self, name: &str) -> Option<u32> {
            self.0.borrow().get(name).copied()
        }

        fn exists(&self, ifindex: u32) -> bool {
            self.0.borrow().values().any(|&i| i == ifindex)
        }
    }

    fn watching(names: &[(&str, u32)]) -> (Presence, Table) {
        let table = Table::default();
        let interfaces: Vec<Interface> = names
            .iter()
            .map(|&(name, ifindex)| {
                table.set(name, Some(ifindex));
                Interface {
                    name: name.into(),
                    ifindex,
                    link: LinkLayer::Ethernet,
                }
            })
            .collect();
        (Presence::new(&interfaces), table)
    }

    fn gone(name: &str, ifindex: u32) -> Change {
        Change::Gone {
            name: name.into(),
            ifindex,
        }
    }

    fn appeared(name: &str, ifindex: u32) -> Change {
        Change::Appeared {
            name: name.into(),
            ifindex,
        }
    }

    #[test]
    fn a_deleted_interface_is_gone_once_and_appears_once_when_created_again() {
        let (mut presence, links) = watching(&[("eth0", 2), ("veth7", 5)]);
        assert_eq!(presence.changes(&links), []);
        links.set("veth7", None);
        assert_eq!(presence.changes(&links), [gone("veth7", 5)]);
        assert_eq!(presence.changes(&links), [], "told once");
        links.set("veth7", Some(9));
        assert_eq!(presence.changes(&links), [appeared("veth7", 9)]);
        assert_eq!(presence.changes(&links), [], "attached under 9 now");
        links.set("veth7", None);
        assert_eq!(presence.changes(&links), [gone("veth7", 9)]);
    }

    #[test]
    fn deleted_and_created_again_between_two_looks_is_both_at_once() {
        let (mut presence, links) = watching(&[("veth7", 5)]);
        links.set("veth7", Some(6));
        assert_eq!(
            presence.changes(&links),
            [gone("veth7", 5), appeared("veth7", 6)]
        );
        assert_eq!(presence.changes(&links), []);
    }

    #[test]
    fn a_renamed_interface_stays_metered() {
        let (mut presence, links) = watching(&[("veth7", 5)]);
        links.set("veth7", None);
        links.set("uplink", Some(5));
        assert_eq!(presence.changes(&links), []);
    }

    #[test]
    fn one_that_could_not_be_metered_is_told_once_per_new_index() {
        let (mut presence, links) = watching(&[("veth7", 5)]);
        links.set("veth7", Some(6));
        presence.changes(&links);
        presence.set("veth7", State::Refused(6));
        assert_eq!(presence.changes(&links), [], "refused under 6: said once");
        // Deleted while not metered: nothing to say; created again: tried again.
        links.set("veth7", None);
        assert_eq!(presence.changes(&links), []);
        links.set("veth7", Some(8));
        assert_eq!(presence.changes(&links), [appeared("veth7", 8)]);
    }

    #[test]
    fn the_kernel_knows_loopback_by_name_and_index() {
        let index = System.index_of("lo").expect("every namespace has lo");
        assert!(System.exists(index));
        assert_eq!(interfaces::name_of(index).as_deref(), Some("lo"));
        assert_eq!(System.index_of("no-such-if0"), None);
    }
}
