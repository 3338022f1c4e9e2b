"""Helpers a vendor plugin's own tests reuse: an isolated Hal, simulated inventories, a self-check.

Typical use in ``hami_plugins_<vendor>/tests``::

    from hami_hal.testing import isolated_hal, plugin_problems, sim_inventory
    from hami_plugins_acme import plugin

    def test_plugin_is_sound():
        assert plugin_problems(plugin) == []

    def test_discovers_default_node():
        inv = sim_inventory(isolated_hal(plugin))
        assert inv.source == "simulated"

Or load the fixtures with ``pytest_plugins = ["hami_hal.testing.fixtures"]``.
"""

from .helpers import PLUGIN_ENV_VARS, clean_plugin_env, isolated_hal, plugin_problems, sim_inventory

__all__ = ["PLUGIN_ENV_VARS", "clean_plugin_env", "isolated_hal", "plugin_problems", "sim_inventory"]
