"""Deployment of spiking networks onto memristive crossbars."""

from . import ir_drop as ir_drop
from . import spice as spice
