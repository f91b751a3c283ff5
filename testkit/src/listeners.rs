//! Real TCP and UDP listeners on one free port, for sandbox tests: a plugin
//! that escaped its sandbox would really connect (or deliver) to them.

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};

pub struct Listeners {
    tcp: TcpListener,
    udp: Option<UdpSocket>,
}

impl Listeners {
    pub fn bind() -> Listeners {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP listener");
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::bind(("127.0.0.1", tcp.local_addr().unwrap().port())).ok();
        if let Some(udp) = &udp {
            udp.set_nonblocking(true).unwrap();
        }
        Listeners { tcp, udp }
    }

    pub fn port(&self) -> u16 {
        self.tcp.local_addr().unwrap().port()
    }

    /// Panics if anything connected to or was sent to the port.
    pub fn assert_untouched(&self) {
        match self.tcp.accept() {
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            other => panic!("the plugin reached the host's TCP listener: {other:?}"),
        }
        if let Some(udp) = &self.udp {
            let mut buf = [0u8; 64];
            match udp.recv_from(&mut buf) {
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                other => panic!("the plugin reached the host's UDP socket: {other:?}"),
            }
        }
    }
}
