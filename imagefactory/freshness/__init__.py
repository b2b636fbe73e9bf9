"""Whether built images are current: the Debian packages the mirror has newer versions of."""
