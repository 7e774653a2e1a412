//! Reader tests on captures written with pcap-file.
