"""How many manifests one ``imagefactory gc`` run deletes by default, apart from
:mod:`imagefactory.release.gc` so the command line declares its ``--limit`` option without
importing the registry client and the evidence it reads."""

DEFAULT_LIMIT = 200
