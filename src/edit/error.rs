//! Why an edit is refused: the file is not what the edit expects (a kubeconfig, a flag list, a
//! proxy config, a bundle manifest), or the edited text would not mean exactly the intended
//! change. Nothing is written when an edit fails; each message says what was expected and
//! what was found.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kubeconfig that cannot be edited as asked.
    #[error("{0}")]
    Kubeconfig(String),

    /// A component's flags (etcd member lists) that cannot be edited as asked.
    #[error("{0}")]
    Config(String),

    /// A node-local proxy config (nginx, haproxy) that cannot be edited as asked.
    #[error("{0}")]
    Proxy(String),

    /// A bundle manifest (`bundle.json`) or its files.
    #[error("{0}")]
    Bundle(String),

    /// YAML the span reader cannot follow.
    #[error("{0}")]
    Yaml(String),

    /// YAML past the crate's bounds (depth, alias expansion).
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
}
