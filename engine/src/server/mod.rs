//! The serving side: workers, their accept loops and client connections.

pub mod conn;
pub mod drain;
pub mod ratelog;
pub mod tls_accept;
pub mod worker;
