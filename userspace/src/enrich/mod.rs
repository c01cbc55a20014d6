//! Enrichers: what the kernel cannot know about a flow. Which local process owns it
//! (`sockets`), where its remote end is (`geo`).

pub mod geo;
pub mod sockets;
