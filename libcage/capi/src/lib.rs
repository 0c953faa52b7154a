//! libcage.so
