"""Small pure numerical functions shared by the steps (geodesy, clap filter, topofit, ...)."""
