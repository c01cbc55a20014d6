//! Asks the kernel (rtnetlink) whether an interface already has an XDP program.
//! aya has no public query for this, and a program attached by another tool through
//! netlink is invisible to BPF link listings.

use std::io;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage, LinkXdp},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The id of the XDP program attached to `ifindex`, in any mode, if there is one.
pub fn attached_xdp_program(ifindex: u32) -> io::Result<Option<u32>> {
    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    let mut request = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(link)),
    );
    request.header.flags = NLM_F_REQUEST;
    request.finalize();
    let mut buffer = vec![0; request.buffer_len()];
    request.serialize(&mut buffer);

    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&buffer, 0)?;
    let (reply, _) = socket.recv_from_full()?;
    let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    match message.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
            Ok(xdp_program_id(&link.attributes))
        }
        NetlinkPayload::Error(error) => Err(error.to_io()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected rtnetlink reply",
        )),
    }
}

fn xdp_program_id(attributes: &[LinkAttribute]) -> Option<u32> {
    attributes.iter().find_map(|attribute| match attribute {
        LinkAttribute::Xdp(xdp) => xdp.iter().find_map(|nla| match nla {
            LinkXdp::ProgId(id)
            | LinkXdp::DrvProgId(id)
            | LinkXdp::SkbProgId(id)
            | LinkXdp::HwProgId(id)
                if *id != 0 =>
            {
                Some(*id)
            }
            _ => None,
        }),
        _ => None,
    })
}
