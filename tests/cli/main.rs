//! Integration tests: the real `certs` binary on copies of the committed fixtures, checked
//! against openssl and real TLS servers on loopback.

mod inspect;
mod reissue;
mod util;
