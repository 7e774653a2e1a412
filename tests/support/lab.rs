//! A capture namespace and a peer namespace joined by a veth pair: the
//! place kernel tests capture in. Field order is drop order: the pair goes
//! before the namespaces.

use std::time::Duration;

use super::netns::{NetNs, VethPair};
use super::raw::RawSocket;

pub struct Lab {
    pub link: VethPair,
    pub capture: NetNs,
    pub peer: NetNs,
}

impl Lab {
    pub fn new() -> Lab {
        let capture = NetNs::new("cap").unwrap();
        let peer = NetNs::new("peer").unwrap();
        let link = VethPair::new(&capture, &peer).unwrap();
        Lab {
            link,
            capture,
            peer,
        }
    }

    /// The interface captures run on (the capture namespace's end).
    pub fn iface(&self) -> &str {
        &self.link.a.name
    }

    /// A raw socket on the peer's end.
    pub fn sender(&self) -> RawSocket {
        let peer_if = self.link.b.name.clone();
        self.peer.enter(move || RawSocket::bind(&peer_if)).unwrap()
    }

    /// Sets the MTU of both ends of the pair.
    pub fn set_mtu(&self, mtu: &str) {
        self.capture
            .ip(&["link", "set", &self.link.a.name, "mtu", mtu])
            .unwrap();
        self.peer
            .ip(&["link", "set", &self.link.b.name, "mtu", mtu])
            .unwrap();
    }

    /// Waits until an XDP program is attached to the capture interface.
    pub fn wait_attached(&self, timeout: Duration) -> serde_json::Value {
        self.capture.wait_for_xdp(self.iface(), timeout).unwrap()
    }

    /// Fails the test when an XDP program is still attached.
    pub fn assert_detached(&self) {
        assert_eq!(
            self.capture.xdp_attachment(self.iface()).unwrap(),
            None,
            "an XDP program is still attached to {}",
            self.iface()
        );
    }
}
