"""What a campaign is, independent of where it is stored: its identity, the frozen plan,
approval, the lease that makes one sender at a time, and a send of a plan."""
