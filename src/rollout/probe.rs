//! The real health prober: a rustls probe that proves the endpoint serves the expected serial,
//! plus its health path.

use std::path::PathBuf;
use std::time::Duration;

use super::exec::Prober;
use super::plan::{Gate, Trust};
use super::Error;
use crate::sys::tls::{self, ProbeOptions, Trust as Trust2};

pub struct TlsProber {
    pub timeout: Duration,
}

impl Prober for TlsProber {
    fn check(&self, gate: &Gate, serial: Option<&str>) -> Result<(), Error> {
        let (scheme, target) = super::plan::parse_url(&gate.url)?;
        let path = gate.path.as_deref().unwrap_or("/");
        if scheme == "http" {
            let (status, body) = tls::http_get(&target, path, self.timeout)
                .map_err(|e| Error::Http(e.to_string()))?;
            return answer(path, status, &body, gate.expect.as_deref());
        }
        let read = |p: &PathBuf| crate::sys::fs::read_file(p).map_err(Error::sys);
        let roots = match &gate.trust {
            Trust::Ca(ca) => Some(tls::certs_from_pem(&read(ca)?).map_err(Error::pem(ca))?),
            Trust::SelfSigned | Trust::Plain => None,
        };
        let client_identity = match &gate.client {
            Some(id) => Some((
                tls::certs_from_pem(&read(&id.cert)?).map_err(Error::pem(&id.cert))?,
                tls::key_from_pem(&read(&id.key)?).map_err(Error::pem(&id.key))?,
            )),
            None => None,
        };
        let opts = ProbeOptions {
            insecure: roots.is_none(),
            roots,
            timeout: self.timeout,
            client_identity,
            server_name: None,
        };
        let probe = match &gate.path {
            Some(path) => {
                let resp = tls::https_get(&target, path, &opts)?;
                answer(path, resp.status, &resp.body, gate.expect.as_deref())?;
                resp.probe
            }
            None => tls::probe(&target, &opts)?,
        };
        let leaf = probe.chain.first().ok_or(Error::NoCertServed)?;
        let got =
            crate::pki::cert::CertInfo::from_der(leaf).map_err(|e| Error::ServedUnreadable {
                reason: e.to_string(),
            })?;
        match gate.trust {
            Trust::Ca(_) if probe.trust != Trust2::Verified => {
                return Err(Error::ServedChain {
                    trust: probe.trust.to_string(),
                })
            }
            // Liveness of a certificate the component made itself: it must at least be one.
            Trust::SelfSigned if !got.is_signed_by(&got) => {
                return Err(Error::NotSelfSigned {
                    subject: got.subject.to_string(),
                })
            }
            _ => {}
        }
        if let Some(want) = serial {
            if got.serial != want {
                return Err(Error::WrongSerial {
                    got: got.serial,
                    want: want.into(),
                });
            }
        }
        Ok(())
    }
}

/// The health answer: 200, and the expected text if any.
fn answer(path: &str, status: u16, body: &[u8], expect: Option<&str>) -> Result<(), Error> {
    if status != 200 {
        return Err(Error::HealthStatus {
            path: path.into(),
            status,
        });
    }
    let body = String::from_utf8_lossy(body);
    if let Some(want) = expect {
        if !body.replace(' ', "").contains(&want.replace(' ', "")) {
            return Err(Error::HealthBody {
                path: path.into(),
                body: body.trim().into(),
                want: want.into(),
            });
        }
    }
    Ok(())
}
