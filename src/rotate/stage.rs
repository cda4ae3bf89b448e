//! Which stage of a rotation a node is in, judged from what its files hold: its trust anchors
//! (CA files named by trust flags, kubeconfig CAs), its signing CA files (the first certificate
//! of `ca.crt`, the one paired with `ca.key`) and the leaves the CAs signed.

use serde::Serialize;

/// A rotation's stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// No anchor trusts a new CA yet.
    Nothing,
    /// Every anchor trusts both; the old CA still signs.
    #[serde(rename = "trusted")]
    Trust,
    /// Every leaf is the new CA's and the signing files are the new CA; anchors trust both.
    #[serde(rename = "switched")]
    Switch,
    /// No anchor trusts the old CA any more.
    Finished,
    /// Between stages (a rollout not finished, a file changed by hand): `reasons` say where.
    Mixed,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Nothing => "nothing",
            Stage::Trust => "trusted",
            Stage::Switch => "switched",
            Stage::Finished => "finished",
            Stage::Mixed => "mixed",
        }
    }

    /// What to run next.
    pub fn next(self) -> &'static str {
        match self {
            Stage::Nothing => "certs rotate-ca trust",
            Stage::Trust => "certs rotate-ca switch",
            Stage::Switch => "certs rotate-ca finish",
            Stage::Finished => "nothing: the rotation is finished",
            Stage::Mixed => {
                "finish the rollout in progress (certs rollout status), or roll it back"
            }
        }
    }
}

/// One trust anchor: what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub path: String,
    pub old: bool,
    pub new: bool,
}

/// One signing CA file (a CA certificate with its key beside it): whether its first
/// certificate is the new CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    pub path: String,
    pub new_first: bool,
}

/// What the node's files hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub anchors: Vec<Anchor>,
    pub signers: Vec<Signer>,
    /// Leaves signed by the old CA, and by the new.
    pub old_leaves: Vec<String>,
    pub new_leaves: Vec<String>,
}

/// The stage, and why: what the files hold that makes it this stage, or for [`Stage::Mixed`]
/// a line per file that fits no stage.
pub fn judge(f: &Facts) -> (Stage, Vec<String>) {
    let (stage, mut why) = judge_mixed(f);
    if stage != Stage::Mixed {
        why = summary(f, stage);
    }
    (stage, why)
}

/// The lines that say why a node is in one of the four stages.
fn summary(f: &Facts, stage: Stage) -> Vec<String> {
    let n = f.anchors.len();
    let anchors = match stage {
        Stage::Nothing => format!("{n} anchor(s) trust the old CA, none the new"),
        Stage::Trust | Stage::Switch => format!("all {n} anchor(s) trust the old and the new CA"),
        _ => format!("all {n} anchor(s) trust the new CA, none the old"),
    };
    let files = |v: &[&Signer]| {
        v.iter()
            .map(|s| s.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let signers: Vec<&Signer> = f.signers.iter().collect();
    let signs = if signers.is_empty() {
        "no signing CA file on this node (a CA key beside a CA file)".to_string()
    } else if matches!(stage, Stage::Nothing | Stage::Trust) {
        format!("the old CA signs: {} start(s) with it", files(&signers))
    } else {
        format!("the new CA signs: {} start(s) with it", files(&signers))
    };
    let leaves = format!(
        "{} leaf(s) from the old CA, {} from the new",
        f.old_leaves.len(),
        f.new_leaves.len()
    );
    vec![anchors, signs, leaves]
}

fn judge_mixed(f: &Facts) -> (Stage, Vec<String>) {
    let both = f.anchors.iter().all(|a| a.old && a.new);
    let no_new = f.anchors.iter().all(|a| !a.new);
    let no_old = f.anchors.iter().all(|a| !a.old);
    let signs_new = f.signers.iter().all(|s| s.new_first);
    let signs_old = f.signers.iter().all(|s| !s.new_first);
    if no_new && signs_old && f.new_leaves.is_empty() {
        return (Stage::Nothing, vec![]);
    }
    if both && signs_old && f.new_leaves.is_empty() {
        return (Stage::Trust, vec![]);
    }
    if both && signs_new && f.old_leaves.is_empty() {
        return (Stage::Switch, vec![]);
    }
    if no_old && f.anchors.iter().all(|a| a.new) && signs_new && f.old_leaves.is_empty() {
        return (Stage::Finished, vec![]);
    }
    let mut why = Vec::new();
    for a in &f.anchors {
        match (a.old, a.new) {
            (true, false) if !no_new => why.push(format!("{}: trusts the old CA only", a.path)),
            (false, true) if !no_old => why.push(format!("{}: trusts the new CA only", a.path)),
            (false, false) => why.push(format!("{}: trusts neither CA", a.path)),
            _ => {}
        }
    }
    if !signs_new && !signs_old {
        for s in &f.signers {
            why.push(format!(
                "{}: signs with the {} CA",
                s.path,
                if s.new_first { "new" } else { "old" }
            ));
        }
    }
    if !f.old_leaves.is_empty() && !f.new_leaves.is_empty() {
        why.push(format!(
            "{} leaf(s) from the old CA ({}), {} from the new",
            f.old_leaves.len(),
            f.old_leaves.join(", "),
            f.new_leaves.len()
        ));
    } else if !f.new_leaves.is_empty() && !both && !no_old {
        why.push("leaves from the new CA while not every anchor trusts it".into());
    } else if !f.old_leaves.is_empty() && no_old {
        why.push(format!(
            "leaves from the old CA no anchor trusts any more: {}",
            f.old_leaves.join(", ")
        ));
    }
    if why.is_empty() {
        why.push("the files fit no stage".into());
    }
    (Stage::Mixed, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(anchors: &[(bool, bool)], new_first: bool, old: usize, new: usize) -> Facts {
        Facts {
            anchors: anchors
                .iter()
                .enumerate()
                .map(|(i, (o, n))| Anchor {
                    path: format!("a{i}"),
                    old: *o,
                    new: *n,
                })
                .collect(),
            signers: vec![Signer {
                path: "ca.crt".into(),
                new_first,
            }],
            old_leaves: (0..old).map(|i| format!("o{i}")).collect(),
            new_leaves: (0..new).map(|i| format!("n{i}")).collect(),
        }
    }

    #[test]
    fn each_stage_from_the_files() {
        let j = |f: Facts| judge(&f).0;
        assert_eq!(j(facts(&[(true, false); 3], false, 5, 0)), Stage::Nothing);
        assert_eq!(j(facts(&[(true, true); 3], false, 5, 0)), Stage::Trust);
        assert_eq!(j(facts(&[(true, true); 3], true, 0, 5)), Stage::Switch);
        assert_eq!(j(facts(&[(false, true); 3], true, 0, 5)), Stage::Finished);
        let (_, why) = judge(&facts(&[(true, true); 3], true, 0, 5));
        assert_eq!(
            why,
            [
                "all 3 anchor(s) trust the old and the new CA",
                "the new CA signs: ca.crt start(s) with it",
                "0 leaf(s) from the old CA, 5 from the new"
            ]
        );
        let (s, why) = judge(&facts(&[(true, true), (true, false)], false, 5, 0));
        assert_eq!(s, Stage::Mixed);
        assert_eq!(why, ["a1: trusts the old CA only"]);
        let (s, why) = judge(&facts(&[(true, true); 2], true, 1, 4));
        assert_eq!(s, Stage::Mixed);
        assert!(
            why[0].starts_with("1 leaf(s) from the old CA (o0)"),
            "{why:?}"
        );
    }
}
