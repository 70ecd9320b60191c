"""The book: every strategy instance the Floor runs, its stage (research → paper → live-small →
live → retired), the criteria to promote it, the monitor that demotes it when its results decay,
and the portfolio-wide risk layer above the accounts."""
