//! The per-container shim: its process (`rdock-shim`), the launcher the
//! runtime daemon uses to start one, and the client that talks to it.
