"""Testing built images: declarative checks, testinfra tests, container-structure-test files."""
