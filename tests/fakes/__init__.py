"""Local fakes of the services imagefactory talks to."""
