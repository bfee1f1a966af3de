"""Build tool of the ``sluice-plugin`` wheel: makes a plugin directory a
WebAssembly component with componentize-py, without a Sluice checkout.

    python -m sluice_plugin_tools build DIR [OUT]

is what ``sluice plugin build`` runs, from the plugin project's own venv
(``DIR/.venv``, made from ``DIR/requirements.txt``), for a plugin made by
``sluice plugin new --lang python``. It prints the component's path.

The recipe is the repository's ``plugins/python/build.sh --plugin``:

- a plugin is a directory with ``<dir name, - as _>.py`` (the app module)
  and ``sluice.toml`` naming its world (``world = "validator"`` or
  ``"enricher"``);
- the app and the SDK (this wheel's ``sluice_plugin``) are copied without
  tests, bytecode, hidden entries, ``dist/`` and ``vendor/``, and compiled
  with ``componentize-py -d WIT -w WORLD componentize MODULE -p APP -p SDK``,
  ``VIRTUAL_ENV`` pointing at an empty directory so nothing else of the
  machine's Python ends up inside;
- outputs are cached in ``${SLUICE_CACHE:-~/.cache/sluice}/plugins-py-cache``
  by a hash of everything they are made from (componentizing takes seconds,
  and componentize-py is not reproducible byte for byte);
- the component is checked: its header says "component", and it names its
  world's export and not the other world's.
"""
